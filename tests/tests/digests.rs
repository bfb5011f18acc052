//! Client digests through a real SMTP server: send now with the panel
//! headline and an inline chart, "nothing new" when nothing changed, the
//! UX map's flags both ways, and the weekly and daily schedules in the
//! client's time zone across a DST change and over many clients (the
//! scheduler is called with a fixed clock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mail, Mode, SmtpSink, both_modes, ndjson_rows, panel, parse_mail, spawn_with};

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

async fn digests_are_sent_now_and_on_schedule(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{}", p.client),
            Some(&t.token),
            Some(
                json!({"report_recipients": ["ceo@client.example.com", "cmo@client.example.com"],
                        "timezone": "Europe/Berlin", "locale": "en", "digest_schedule": "weekly"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/questionnaires/{}/responses/import",
                p.questionnaire
            ),
            Some(&t.token),
            "application/x-ndjson",
            ndjson_rows("d-", 40),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_summary(&t.token, &p.questionnaire, 1).await;

    // Send now: one email per recipient, with the figures and the chart.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/digest/send", p.client),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["queued"], 2);
    let mail: Vec<Mail> = sink
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let mut to: Vec<&str> = mail.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["ceo@client.example.com", "cmo@client.example.com"]);
    let m = &mail[0];
    assert!(m.subject.contains("report"), "{}", m.subject);
    assert!(m.text.contains("Respondents: 40"), "{}", m.text);
    assert!(m.text.contains("Top choice factors"), "{}", m.text);
    assert!(m.html.contains("cid:factors"), "{}", m.html);
    assert_eq!(m.inline_cids.len(), 1, "one inline chart: {}", m.raw);
    assert!(m.raw.contains("image/png"));

    // Nothing changed since: a short "nothing new", without charts.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/digest/send", p.client),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let again: Vec<Mail> = sink.wait_for(4).await[2..]
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    assert!(
        again[0].subject.contains("nothing new"),
        "{}",
        again[0].subject
    );
    assert!(again[0].inline_cids.is_empty());
    assert!(again[0].text.contains("No new data since the last report"));

    // The schedule, with a fixed clock: Mondays 09:00 Berlin time. Before
    // 09:00 CEST on the first Monday of summer time, the due slot is the
    // previous Monday's 09:00 CET (08:00 UTC); from 07:00 UTC it is this one.
    let sent = app
        .services
        .run_due_digests(utc("2027-03-29T06:59:00Z"))
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let m = parse_mail(&sink.wait_for(6).await[4]);
    assert!(m.subject.contains("2027-03-22"), "{}", m.subject);
    // The same clock again: that slot is done.
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-03-29T06:59:30Z"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-03-29T07:00:00Z"))
            .await
            .unwrap(),
        1
    );
    let m = parse_mail(&sink.wait_for(8).await[6]);
    assert!(m.subject.contains("2027-03-29"), "{}", m.subject);
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-04-05T06:59:59Z"))
            .await
            .unwrap(),
        0
    );

    // The preview is the digest as of now, sending nothing.
    let r = app
        .get(
            &format!("/api/v1/clients/{}/email-previews/digest", p.client),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("Fitness") || r.text.contains("report"),
        "{}",
        r.text
    );
    assert_eq!(sink.messages().len(), 8);
    // No recipients: send now is refused.
    let other = app
        .create("/api/v1/clients", &t.token, json!({"name": "Quiet"}))
        .await;
    let r = app
        .post(
            &format!("/api/v1/clients/{other}/digest/send"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}

fn cash_params(reach: f64) -> serde_json::Value {
    json!({
        "reach": reach, "ctr": 0.1, "lead_rate": 0.2, "conversion": 0.5,
        "items_per_order": 1.0, "item_price": 100.0, "refusal_rate": 0.0,
        "repeat_purchases": 1.0, "repeat_uplift": 0.1, "gross_margin": 0.5,
        "marketing_cost": 1000.0
    })
}

/// A Russian client's digest, branded by its agency, with the Cash Journey
/// model's latest actuals against the base scenario — only once actuals
/// exist — and a short "nothing new" when nothing changed. Driven over
/// GraphQL: settings, preview, send now.
async fn a_digest_shows_plan_vs_fact_in_the_agency_brand(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let gql = |query: &'static str, vars: serde_json::Value| {
        let app = &app;
        let token = t.token.clone();
        async move { app.graphql(Some(&token), query, vars).await.body }
    };
    let r = gql(
        "mutation { updateAgencySettings(input: {logoUrl: \"http://cdn.acme.example.com/l.png\", brandColour: \"orange\"}) { name } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{r}"
    );
    let fields: Vec<&str> = r["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["logo_url", "brand_colour"]);
    let r = gql(
        "mutation { updateAgencySettings(input: {logoUrl: \"https://cdn.acme.example.com/l.png\", brandColour: \"#0A7E8C\"}) { logoUrl brandColour } }",
        json!({}),
    )
    .await;
    assert_eq!(
        r["data"]["updateAgencySettings"]["brandColour"], "#0a7e8c",
        "{r}"
    );
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Подписка", "locale": "ru", "timezone": "Europe/Moscow"}),
        )
        .await;
    let r = gql(
        "mutation($c: ID!) { updateDigestSettings(clientId: $c, input: {schedule: \"fortnightly\"}) { schedule } }",
        json!({"c": client}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"], "schedule",
        "{r}"
    );
    let r = gql(
        "mutation($c: ID!) { updateDigestSettings(clientId: $c, input: {schedule: \"weekly\", reportRecipients: [\"ceo@client.example.com\"]}) { schedule reportRecipients nextAt lastSentAt } }",
        json!({"c": client}),
    )
    .await;
    let s = &r["data"]["updateDigestSettings"];
    assert_eq!(
        s["reportRecipients"],
        json!(["ceo@client.example.com"]),
        "{r}"
    );
    assert!(s["nextAt"].is_string() && s["lastSentAt"].is_null(), "{r}");

    // A model without actuals: no plan-vs-fact section.
    let model = app
        .create(
            &format!("/api/v1/clients/{client}/cash-models"),
            &t.token,
            json!({"name": "Воронка", "scenarios": {"min": cash_params(500.0), "base": cash_params(1000.0), "max": cash_params(2000.0)}}),
        )
        .await;
    let r = gql(
        "query($c: ID!) { emailPreview(clientId: $c, kind: \"digest\") { subject html text } }",
        json!({"c": client}),
    )
    .await;
    let text = r["data"]["emailPreview"]["text"].as_str().unwrap();
    assert!(!text.contains("Cash Journey"), "{text}");
    // Base plan: 100 visits, 20 leads, 50 first sales, revenue 10,500, ROMI 4.25.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/cash-models/{model}/actuals/2026-10"),
            Some(&t.token),
            Some(json!({"leads": 25})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/cash-models/{model}/actuals/2026-11"),
            Some(&t.token),
            Some(json!({"leads": 10, "first_sales": 30, "traffic": 99, "revenue": 9450, "romi": 4.0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = gql(
        "mutation($c: ID!) { sendDigestNow(clientId: $c) }",
        json!({"c": client}),
    )
    .await;
    assert_eq!(r["data"]["sendDigestNow"], 1, "{r}");
    let m = parse_mail(&sink.wait_for(1).await[0]);
    assert_eq!(m.to, "ceo@client.example.com");
    assert!(m.subject.contains("отчёт"), "{}", m.subject);
    assert!(m.text.contains("Cash Journey: план и факт"), "{}", m.text);
    assert!(
        m.text.contains("Воронка, 2026-11"),
        "the latest period: {}",
        m.text
    );
    assert!(!m.text.contains("2026-10"), "{}", m.text);
    // Revenue and ROMI lead; then leads −50 %, first sales −40 %, traffic
    // −1 %: the biggest first.
    assert!(
        m.text
            .contains("- Выручка: Факт 9\u{a0}450, План 10\u{a0}500 (−10,0%)")
            && m.text.contains("- ROMI: Факт 400,0%, План 425,0% (−5,9%)"),
        "{}",
        m.text
    );
    let leads = m.text.find("Лиды: Факт 10,00, План 20,00 (−50,0%)");
    let sales = m
        .text
        .find("Первые продажи: Факт 30,00, План 50,00 (−40,0%)");
    let traffic = m.text.find("Трафик: Факт 99,00, План 100 (−1,0%)");
    assert!(
        leads.is_some() && sales.is_some() && traffic.is_some() && leads < sales && sales < traffic,
        "{}",
        m.text
    );
    assert!(
        m.html.contains("background:#0a7e8c"),
        "brand colour: {}",
        m.html
    );
    assert!(
        m.html
            .contains("https:&#x2f;&#x2f;cdn.acme.example.com&#x2f;l.png"),
        "logo: {}",
        m.html
    );
    assert!(m.html.contains("Наибольшие отклонения"), "{}", m.html);

    // Nothing changed since: the short note, no figures.
    gql(
        "mutation($c: ID!) { sendDigestNow(clientId: $c) }",
        json!({"c": client}),
    )
    .await;
    let m = parse_mail(&sink.wait_for(2).await[1]);
    assert!(m.subject.contains("без изменений"), "{}", m.subject);
    assert!(
        m.text.contains("С прошлого отчёта новых данных нет"),
        "{}",
        m.text
    );
    assert!(!m.text.contains("Cash Journey"), "{}", m.text);
    // New actuals are news again.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/cash-models/{model}/actuals/2026-12"),
            Some(&t.token),
            Some(json!({"leads": 30})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    gql(
        "mutation($c: ID!) { sendDigestNow(clientId: $c) }",
        json!({"c": client}),
    )
    .await;
    let m = parse_mail(&sink.wait_for(3).await[2]);
    assert!(m.text.contains("Воронка, 2026-12"), "{}", m.text);
    assert!(m.text.contains("(+50,0%)"), "{}", m.text);
    let r = gql(
        "query($c: ID!) { digestSettings(clientId: $c) { lastSentAt } }",
        json!({"c": client}),
    )
    .await;
    assert!(r["data"]["digestSettings"]["lastSentAt"].is_string(), "{r}");
    // The REST preview shows the same branding.
    let r = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/digest"),
            &t.token,
        )
        .await;
    assert!(r.text.contains("background:#0a7e8c"), "{}", r.text);
    assert_eq!(sink.messages().len(), 3, "previews send nothing");
}

/// Mystery-shopper audits of two touchpoints, `(date, A's rating, B's
/// rating)` per visit (0 = not rated).
fn two_touchpoint_audits(rows: &[(&str, u8, u8)]) -> String {
    let mut csv = String::from("visit,a,b\n");
    for (day, a, b) in rows {
        let cell = |r: &u8| {
            if *r == 0 {
                String::new()
            } else {
                r.to_string()
            }
        };
        csv.push_str(&format!("{day},{},{}\n", cell(a), cell(b)));
    }
    csv
}

/// The UX map's flags in the digest, both ways: touchpoint A falls (a
/// negative flag), B rises a week later (a positive flag). The audits are
/// dated in 2027 and the digests run on a fixed clock on three Mondays, so
/// the second digest's only news is B's new positive flag (no data arrived
/// in between: the windows moved), and the third, with no flag left and no
/// data, says "nothing new". In English and in Russian.
async fn digests_show_positive_flags_beside_negative_ones(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let lib = app
        .post(
            &format!(
                "/api/v1/touchpoint-libraries/{}/clone",
                tests::TEMPLATE_LIBRARY
            ),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(lib.status, StatusCode::CREATED, "{}", lib.text);
    let tp = |i: usize| lib.body["stages"][3]["touchpoints"][i].clone();
    let (a, b) = (tp(0), tp(1));
    // Baseline (the 4 weeks before each window) and current-week visits:
    // as of 2027-03-01, A is 5 → 1 (negative) and B has no current ratings;
    // as of 03-08, A is still down (1 against 3) and B is 1 → 5 (positive);
    // as of 03-15 nobody visited for a week: no flags.
    let audits = two_touchpoint_audits(&[
        ("2027-02-05", 5, 1),
        ("2027-02-10", 5, 1),
        ("2027-02-15", 5, 1),
        ("2027-02-25", 1, 0),
        ("2027-02-27", 1, 0),
        ("2027-03-01", 1, 0),
        ("2027-03-03", 1, 5),
        ("2027-03-04", 1, 5),
        ("2027-03-05", 1, 5),
    ]);
    for (name, locale) in [("Fitness club", "en"), ("Фитнес-клуб", "ru")] {
        let client = app
            .create(
                "/api/v1/clients",
                &t.token,
                json!({"name": name, "timezone": "UTC", "locale": locale, "digest_schedule": "weekly",
                       "report_recipients": [format!("ceo-{locale}@client.example.com")]}),
            )
            .await;
        let audit = app
            .create(
                &format!("/api/v1/clients/{client}/questionnaires"),
                &t.token,
                json!({"title": "Mystery shopper", "kind": "mystery_shopper", "questions": [
                    {"key": "visit", "type": "date", "role": "visit_date", "required": true},
                    {"key": "a", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": a["id"]},
                    {"key": "b", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": b["id"]}
                ]}),
            )
            .await;
        let r = app
            .raw(
                Method::POST,
                &format!("/api/v1/questionnaires/{audit}/responses/import"),
                Some(&t.token),
                "text/csv",
                audits.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        app.wait_for_job(&t.token, "client_ux", &client, 1).await;
    }
    let name = |tp: &serde_json::Value, locale: &str| {
        tp[format!("name_{locale}")].as_str().unwrap().to_owned()
    };
    // One scheduled tick on a fixed clock: both clients' digests, as
    // received (English first).
    let monday = |at: &'static str, n: usize| {
        let (app, sink) = (&app, &sink);
        async move {
            assert_eq!(app.services.run_due_digests(utc(at)).await.unwrap(), 2);
            let all = sink.wait_for(n).await;
            let mut m: Vec<Mail> = all[n - 2..]
                .iter()
                .map(|m| {
                    let mut m = parse_mail(m);
                    // Lines end in CRLF on the wire.
                    m.text = m.text.replace("\r\n", "\n");
                    m
                })
                .collect();
            m.sort_by(|x, y| x.to.cmp(&y.to));
            (m[0].clone(), m[1].clone())
        }
    };
    let has = |m: &Mail, lines: String| assert!(m.text.contains(&lines), "{lines:?} in {}", m.text);

    // Monday 1: A's negative flag; B not flagged yet.
    let (en, ru) = monday("2027-03-01T09:00:00Z", 2).await;
    assert_eq!(
        (en.to.as_str(), ru.to.as_str()),
        ("ceo-en@client.example.com", "ceo-ru@client.example.com")
    );
    has(
        &en,
        format!("Negative flags:\n- {}: -4.0 (1.0 vs 5.0)\n", name(&a, "en")),
    );
    assert!(!en.text.contains("Positive flags"), "{}", en.text);
    has(
        &ru,
        format!(
            "Отрицательные отклонения:\n- {}: -4,0 (1,0 против 5,0)\n",
            name(&a, "ru")
        ),
    );

    // Monday 2, no new data: B's new positive flag is news, shown beside
    // A's negative one (not new any more).
    let (en, ru) = monday("2027-03-08T09:00:00Z", 4).await;
    assert!(
        en.subject.contains("report for 2027-03-08") && !en.subject.contains("nothing new"),
        "{}",
        en.subject
    );
    has(
        &en,
        format!(
            "Negative flags:\n- {}: -2.0 (1.0 vs 3.0)\nPositive flags:\n- {}: +4.0 (5.0 vs 1.0) [new]\n",
            name(&a, "en"),
            name(&b, "en")
        ),
    );
    assert!(
        en.html.contains("Positive flags")
            && en.html.contains(&name(&b, "en"))
            && en.html.contains("#0e7c3a"),
        "positive flags, in green: {}",
        en.html
    );
    assert!(ru.subject.contains("отчёт за 2027-03-08"), "{}", ru.subject);
    has(
        &ru,
        format!(
            "Положительные отклонения:\n- {}: +4,0 (5,0 против 1,0) [новое]\n",
            name(&b, "ru")
        ),
    );

    // Monday 3: no flag left, no data: nothing new, briefly.
    let (en, ru) = monday("2027-03-15T09:00:00Z", 6).await;
    assert!(en.subject.contains("nothing new"), "{}", en.subject);
    assert!(
        en.text.contains("No new data since the last report") && !en.text.contains("UX map"),
        "{}",
        en.text
    );
    assert!(ru.subject.contains("без изменений"), "{}", ru.subject);
    assert_eq!(
        sink.messages().len(),
        6,
        "no UX alert emails: the audits are in the future"
    );
}

/// The first 09:00 in Berlin after `after`, by chrono-tz alone.
fn next_berlin_nine(after: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let berlin = chrono_tz::Europe::Berlin;
    let today = after.with_timezone(&berlin).date_naive();
    (0..3)
        .map(|k| today + chrono::Days::new(k))
        .map(|d| {
            berlin
                .from_local_datetime(&d.and_hms_opt(9, 0, 0).unwrap())
                .single()
                .unwrap()
                .with_timezone(&chrono::Utc)
        })
        .find(|t| *t > after)
        .unwrap()
}

/// A daily client in Berlin, switched from weekly over GraphQL, gets one
/// digest per local day at 09:00: a fixed clock ticking every 30 minutes
/// across the change to summer time sends each day's at 09:00 local (08:00
/// UTC in winter, 07:00 UTC from Sunday on), a missed stretch only the
/// newest, and each day's funnel is the whole day before, compared with
/// the day before that.
async fn a_daily_client_gets_one_digest_per_local_day(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Bakery", "timezone": "Europe/Berlin", "locale": "en",
                   "digest_schedule": "weekly", "report_recipients": ["owner@bakery.example.com"]}),
        )
        .await;
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!) { updateDigestSettings(clientId: $c, input: {schedule: \"daily\"}) { schedule nextAt } }",
            json!({"c": client}),
        )
        .await;
    let s = &r.body["data"]["updateDigestSettings"];
    assert_eq!(s["schedule"], "daily", "{}", r.text);
    let next_at: chrono::DateTime<chrono::Utc> = s["nextAt"].as_str().unwrap().parse().unwrap();
    let asked = chrono::Utc::now();
    assert!(
        next_at == next_berlin_nine(asked)
            || next_at == next_berlin_nine(asked - chrono::Duration::seconds(5)),
        "the next 09:00 in Berlin: {next_at}"
    );
    let r = app
        .get(&format!("/api/v1/clients/{client}"), &t.token)
        .await;
    assert_eq!(r.body["digest_schedule"], "daily", "{}", r.text);
    // Spend and leads on two days of the stretch below.
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/channel-figures"),
            &t.token,
            json!({"rows": [
                {"day": "2027-03-27", "channel": "rtb", "funnel": "reach", "spend": 100, "leads": 4},
                {"day": "2027-03-28", "channel": "rtb", "funnel": "reach", "spend": 60, "leads": 2}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The clock jumps months ahead to Friday 2027-03-26, 12:00 UTC: of all
    // the days missed, only that day's digest goes out.
    let mut clock = utc("2027-03-26T12:00:00Z");
    assert_eq!(app.services.run_due_digests(clock).await.unwrap(), 1);
    let mut sent_at = vec![];
    // Then every 30 minutes until Tuesday 2027-03-30, 12:00 UTC.
    while clock < utc("2027-03-30T12:00:00Z") {
        clock += chrono::Duration::minutes(30);
        let n = app.services.run_due_digests(clock).await.unwrap();
        assert!(n <= 1, "{n} at {clock}");
        if n == 1 {
            sent_at.push(clock);
        }
        // The same tick again sends nothing.
        assert_eq!(app.services.run_due_digests(clock).await.unwrap(), 0);
    }
    assert_eq!(
        sent_at,
        [
            utc("2027-03-27T08:00:00Z"),
            utc("2027-03-28T07:00:00Z"),
            utc("2027-03-29T07:00:00Z"),
            utc("2027-03-30T07:00:00Z"),
        ],
        "09:00 Berlin time each day, CET then CEST"
    );
    let mail: Vec<Mail> = sink
        .wait_for(5)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let day_of = |day: &str| {
        let found: Vec<&Mail> = mail.iter().filter(|m| m.subject.contains(day)).collect();
        assert_eq!(
            found.len(),
            1,
            "one digest for {day}: {:?}",
            mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
        found[0].clone()
    };
    for m in &mail {
        assert_eq!(m.to, "owner@bakery.example.com");
    }
    // Friday's is the first; Saturday's has nothing new (no data, no funnel
    // on Friday); Sunday's funnel is Saturday's whole day.
    assert!(day_of("2027-03-26").subject.contains("report"));
    assert!(day_of("2027-03-27").subject.contains("nothing new"));
    let sunday = day_of("2027-03-28");
    assert!(sunday.subject.contains("report"), "{}", sunday.subject);
    assert!(
        sunday.text.contains("Funnel of 2027-03-27:"),
        "{}",
        sunday.text
    );
    assert!(
        sunday.text.contains("- CPA: 25.00") && !sunday.text.contains("since the last report"),
        "the first funnel shown: no change: {}",
        sunday.text
    );
    // Monday's: Sunday's day against Saturday's (the last digest's), not
    // against a rolling month.
    let monday = day_of("2027-03-29");
    assert!(
        monday.text.contains("Funnel of 2027-03-28:"),
        "{}",
        monday.text
    );
    assert!(
        monday
            .text
            .contains("- CPA: 30.00 (+5.00 since the last report)"),
        "{}",
        monday.text
    );
    assert!(!monday.text.contains("last 4 weeks"), "{}", monday.text);
    // Tuesday's: Monday had no figures; nothing new.
    assert!(day_of("2027-03-30").subject.contains("nothing new"));

    // Next: Wednesday's 09:00 CEST.
    let r = app
        .get(
            &format!("/api/v1/clients/{client}/digest-settings"),
            &t.token,
        )
        .await;
    assert_eq!(
        r.body["next_at"]
            .as_str()
            .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap()),
        Some(utc("2027-03-31T07:00:00Z")),
        "{}",
        r.text
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 5, "one digest per local day");
}

/// Zones without daylight saving and their offsets from UTC in minutes:
/// the test's own reckoning of "09:00 local", independent of the service's.
const ZONES: [(&str, i64); 6] = [
    ("Asia/Tokyo", 540),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
    ("Europe/Moscow", 180),
    ("UTC", 0),
    ("America/Bogota", -300),
];

/// The first slot of `schedule` (Mondays or the 1st, 09:00 at `offset`)
/// after `after`.
fn next_slot(
    schedule: &str,
    offset: i64,
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    let start = after.date_naive() - chrono::Days::new(1);
    (0..40)
        .map(|k| start + chrono::Days::new(k))
        .filter(|d| match schedule {
            "weekly" => d.weekday() == chrono::Weekday::Mon,
            "monthly" => d.day() == 1,
            _ => false,
        })
        .map(|d| d.and_hms_opt(9, 0, 0).unwrap().and_utc() - chrono::Duration::minutes(offset))
        .find(|at| *at > after)
}

/// 200 clients on weekly, monthly or no schedules in six time zones, some
/// archived. Each stores its next slot; a tick on a fixed clock (the coming
/// Monday, 06:30 UTC) selects exactly the due ones in one query and sends
/// them each one digest, and no other; the same tick again sends nothing,
/// and the sent ones' next slot is a week on. A time-zone change before the
/// tick moves a client's next slot in or out of it.
async fn a_tick_sends_only_the_due_digests_of_many_clients(mode: Mode) {
    use chrono::Datelike;
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let today = chrono::Utc::now().date_naive();
    let monday = (1..=7)
        .map(|k| today + chrono::Days::new(k))
        .find(|d| d.weekday() == chrono::Weekday::Mon)
        .unwrap();
    let clock = monday.and_hms_opt(6, 30, 0).unwrap().and_utc();
    struct C {
        id: String,
        recipient: String,
        schedule: &'static str,
        offset: i64,
        /// Since when its schedule stands (creation, or a time-zone change).
        since: chrono::DateTime<chrono::Utc>,
        archived: bool,
    }
    let mut clients = Vec::new();
    for i in 0..200 {
        let (zone, offset) = ZONES[i % ZONES.len()];
        let schedule = match i % 10 {
            0 => "monthly",
            1 => "off",
            _ => "weekly",
        };
        let recipient = format!("boss{i}@client{i}.example.com");
        let r = app
            .post(
                "/api/v1/clients",
                &t.token,
                json!({"name": format!("Client {i}"), "timezone": zone, "digest_schedule": schedule,
                       "locale": "en", "report_recipients": [recipient]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let archived = i % 25 == 7;
        if archived {
            let r = app
                .post(
                    &format!("/api/v1/clients/{id}/archive"),
                    &t.token,
                    json!({}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
        clients.push(C {
            id,
            recipient,
            schedule,
            offset,
            since: r.body["created_at"].as_str().unwrap().parse().unwrap(),
            archived,
        });
    }
    let next_at = |id: String| {
        let app = &app;
        let token = t.token.clone();
        async move {
            let r = app
                .get(&format!("/api/v1/clients/{id}/digest-settings"), &token)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body["next_at"]
                .as_str()
                .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
        }
    };
    // Time-zone changes: a UTC client (09:00 UTC, after the clock) moves to
    // Tokyo (00:00 UTC, before it), a Moscow one (06:00 UTC) to Bogota.
    let weekly_in = |zone: usize| {
        clients
            .iter()
            .position(|c| c.schedule == "weekly" && !c.archived && c.offset == ZONES[zone].1)
            .unwrap()
    };
    let (to_tokyo, to_bogota) = (weekly_in(4), weekly_in(3));
    for (i, to) in [(to_tokyo, 0), (to_bogota, 5)] {
        let c = &clients[i];
        assert_eq!(
            next_at(c.id.clone()).await,
            next_slot("weekly", c.offset, c.since)
        );
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/clients/{}", c.id),
                Some(&t.token),
                Some(json!({"timezone": ZONES[to].0})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let moved = next_at(c.id.clone()).await;
        let c = &mut clients[i];
        c.offset = ZONES[to].1;
        c.since = r.body["updated_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            moved,
            next_slot("weekly", c.offset, c.since),
            "moved with the zone"
        );
    }

    let due: std::collections::BTreeSet<&str> = clients
        .iter()
        .filter(|c| {
            !c.archived && next_slot(c.schedule, c.offset, c.since).is_some_and(|s| s <= clock)
        })
        .map(|c| c.id.as_str())
        .collect();
    // Usually about half of the 152 live weekly clients; all of them when
    // the test runs on a Monday before most zones' 09:00, as their first
    // slot is then that same day. Never the off, archived or (but near the
    // 1st) monthly ones.
    assert!(due.len() > 50 && due.len() < 180, "{} due", due.len());
    assert!(
        due.contains(clients[to_tokyo].id.as_str()),
        "moved to Tokyo: due"
    );
    // The one query of a tick: exactly the due clients, none before.
    let selected = |at| {
        let app = &app;
        async move {
            app.services
                .due_digest_clients(at)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id.to_string())
                .collect::<std::collections::BTreeSet<String>>()
        }
    };
    let wanted: std::collections::BTreeSet<String> = due.iter().map(|s| s.to_string()).collect();
    assert_eq!(selected(clock).await, wanted);
    assert!(selected(chrono::Utc::now()).await.is_empty());

    let sent = app.services.run_due_digests(clock).await.unwrap();
    assert_eq!(sent, due.len());
    let mail = sink.wait_for(due.len()).await;
    let to: std::collections::BTreeSet<String> = mail.iter().map(|m| parse_mail(m).to).collect();
    let expected: std::collections::BTreeSet<String> = clients
        .iter()
        .filter(|c| due.contains(c.id.as_str()))
        .map(|c| c.recipient.clone())
        .collect();
    assert_eq!(to, expected, "each due client's digest, and no other");
    // Each sent client's next slot moved a week on; the tick is done.
    assert!(selected(clock).await.is_empty());
    assert_eq!(app.services.run_due_digests(clock).await.unwrap(), 0);
    let moved = clients
        .iter()
        .find(|c| c.offset == ZONES[0].1 && c.schedule == "weekly" && due.contains(c.id.as_str()))
        .unwrap();
    assert_eq!(
        next_at(moved.id.clone()).await,
        next_slot("weekly", ZONES[0].1, clock),
        "a week on"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), due.len(), "one digest each");
}

/// Clients from before `next_digest_at` existed: the migration gives them
/// a lower bound (the last scheduled slot sent, else their creation) and
/// the first tick turns it into the slot — sending a missed slot once, as
/// before, and not the slot already sent.
async fn clients_from_before_the_stored_slot_are_scheduled_by_the_first_tick(mode: Mode) {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    // No worker: this test's call is the only tick.
    let app = spawn_with(mode, |s| s.run_worker = false).await;
    let t = app.signup("Acme").await;
    let mut ids = Vec::new();
    for name in ["Missed", "Sent"] {
        ids.push(
            app.create(
                "/api/v1/clients",
                &t.token,
                json!({"name": name, "timezone": "Europe/Moscow", "digest_schedule": "weekly",
                       "report_recipients": [format!("{}@client.example.com", name.to_lowercase())]}),
            )
            .await,
        );
    }
    let db = &app.services.db;
    let now = chrono::Utc::now();
    let moscow: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
    let last_monday = service::digest::due_slot(
        service::digest::DigestSchedule::Weekly,
        moscow,
        now - chrono::Duration::days(8),
        now,
    )
    .unwrap();
    // "Missed" was created three weeks ago and never got one; "Sent" got
    // last Monday's.
    entity::client::Entity::update_many()
        .col_expr(
            entity::client::Column::CreatedAt,
            sea_orm::sea_query::Expr::value(now - chrono::Duration::days(21)),
        )
        .filter(
            entity::client::Column::Id.is_in(ids.iter().map(|i| i.parse::<uuid::Uuid>().unwrap())),
        )
        .exec(db)
        .await
        .unwrap();
    entity::digest_run::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        agency_id: Set(t.agency_id.parse().unwrap()),
        client_id: Set(ids[1].parse().unwrap()),
        scheduled_for: Set(last_monday),
        trigger: Set("scheduled".into()),
        figures: Set(json!({"fingerprint": 0, "nps": null, "verdicts": {}})),
        created_at: Set(last_monday),
    }
    .insert(db)
    .await
    .unwrap();
    // The schema as it was before `000013_schedule_clients` (and every
    // migration after it), then the migrations again, with the backfill.
    tests::rerun_migrations_from(db, "_000013_schedule_clients").await;

    let due: Vec<String> = app
        .services
        .due_digest_clients(now)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(due.len(), 2, "both hold a bound in the past");
    assert_eq!(app.services.run_due_digests(now).await.unwrap(), 1);
    let r = app.get("/api/v1/deliveries?kind=digest", &t.token).await;
    let to: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["missed@client.example.com"], "{}", r.text);
    // Both now wait for next Monday.
    assert!(
        app.services
            .due_digest_clients(now)
            .await
            .unwrap()
            .is_empty()
    );
    for id in &ids {
        let r = app
            .get(&format!("/api/v1/clients/{id}/digest-settings"), &t.token)
            .await;
        let next: chrono::DateTime<chrono::Utc> =
            r.body["next_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(next, last_monday + chrono::Duration::days(7), "{}", r.text);
    }
}

both_modes!(
    digests_are_sent_now_and_on_schedule,
    a_daily_client_gets_one_digest_per_local_day,
    clients_from_before_the_stored_slot_are_scheduled_by_the_first_tick,
    a_tick_sends_only_the_due_digests_of_many_clients,
    digests_show_positive_flags_beside_negative_ones,
    a_digest_shows_plan_vs_fact_in_the_agency_brand
);
