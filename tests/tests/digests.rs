//! Client digests through a real SMTP server: send now with the panel
//! headline and an inline chart, "nothing new" when nothing changed, and
//! the weekly schedule in the client's time zone across a DST change (the
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

both_modes!(
    digests_are_sent_now_and_on_schedule,
    a_digest_shows_plan_vs_fact_in_the_agency_brand
);
