//! Nurture chains end to end on a real local SMTP server, with the chain
//! tick driven at chosen instants (the controllable clock): a visitor
//! subscribes and confirms, is scored hot, is enrolled once, gets step 1
//! and step 2 at the right local times (Moscow, window 09:00–20:00), opens
//! and clicks (tracked), converts and gets nothing more; a later purchase
//! of the linked customer enrols it in a reverse chain timed by the JTBD
//! map's median inter-purchase interval minus the lead time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, SmtpSink, TestApp, both_modes, parse_mail, spawn_with};

/// The Moscow (UTC+3, no DST) 09:00–20:00 window, by hand.
fn moscow_window(t: DateTime<Utc>) -> DateTime<Utc> {
    let local = t + chrono::Duration::hours(3);
    let m = local.hour() * 60 + local.minute();
    if (540..1200).contains(&m) {
        return t;
    }
    let day = if m < 540 {
        local.date_naive()
    } else {
        local.date_naive().succ_opt().unwrap()
    };
    day.and_hms_opt(9, 0, 0).unwrap().and_utc() - chrono::Duration::hours(3)
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("{v} is no time")))
        .unwrap()
        .with_timezone(&Utc)
}

async fn enrolments_until(
    app: &TestApp,
    token: &str,
    chain: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(&format!("/api/v1/chains/{chain}/enrolments"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let items = r.body["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "enrolments never got there: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn paths(html: &str, kind: char) -> Vec<String> {
    let html = html
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&");
    let needle = format!("/api/v1/public/t/{kind}/");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i..];
            let end = rest.find(['"', '\'', '<', '>', ' ']).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

/// A client with a saved segment of its hot contacts: (client, segment).
async fn shop_with_hot_segment(app: &TestApp, token: &str) -> (String, String) {
    let c = app
        .create("/api/v1/clients", token, json!({"name": "Shop"}))
        .await;
    let seg = app
        .create(
            &format!("/api/v1/clients/{c}/segments"),
            token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    (c, seg)
}

/// A contact of `client` that a 100-point rule on `vip` makes hot.
async fn hot_contact(app: &TestApp, token: &str, client: &str, email: &str) {
    let r = app.call(Method::PUT, &format!("/api/v1/clients/{client}/scoring"), Some(token),
        Some(json!({"rules": [{"name": "All", "points": 100, "when": {"kind": "attr_equals", "key": "vip", "value": "yes"}}]})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/contacts"),
            token,
            json!({"email": email, "attributes": {"vip": "yes"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn chain_deliveries(app: &TestApp, token: &str) -> usize {
    let r = app.get("/api/v1/deliveries?limit=200", token).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "chain")
        .count()
}

async fn a_hot_visitor_goes_through_the_chain_once_and_a_purchase_starts_the_reverse_one(
    mode: Mode,
) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let c = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Fitness club", "timezone": "Europe/Moscow", "locale": "en"}),
        )
        .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{c}/scoring"),
            Some(&t.token),
            Some(json!({"rules": [
                {"name": "Confirmed", "points": 40, "when": {"kind": "event", "event": "confirmed", "within_days": 30}},
                {"name": "Moscow", "points": 30, "when": {"kind": "attr_equals", "key": "city", "value": "msk"}}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let hot = app
        .create(
            &format!("/api/v1/clients/{c}/segments"),
            &t.token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    let step = |subject: &str, delay: i64, condition: Value| {
        json!({"subject": subject, "delay_minutes": delay, "condition": condition,
               "html": "<p>Hi {{ contact.email }}! <a href=\"https://shop.example.com/offer\">Offer</a></p>",
               "text": "Hi! https://shop.example.com/offer"})
    };
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "Warm-up", "kind": "segment", "segment_id": hot, "steps": [
                step("Welcome", 60, Value::Null),
                step("Your offer", 1440, json!("opened")),
                step("Last call", 1440, Value::Null)
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            r.body["window_start"].as_str(),
            r.body["window_end"].as_str()
        ),
        (Some("09:00"), Some("20:00"))
    );
    let chain = r.body["id"].as_str().unwrap().to_owned();

    // The visitor subscribes and confirms.
    let list = app
        .create(
            &format!("/api/v1/clients/{c}/lists"),
            &t.token,
            json!({"name": "News", "consent_text": "I agree"}),
        )
        .await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/public/lists/{list}/subscribe"),
            None,
            Some(json!({"email": "visitor@example.com", "consent": true, "attributes": {"city": "msk"}})),
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 2, "{}", r.text);
    let confirmation = sink.wait_for(1).await;
    assert!(parse_mail(&confirmation[0]).to == "visitor@example.com");
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &t.token)
        .await;
    let sub = uuid::Uuid::parse_str(subs.body["items"][0]["id"].as_str().unwrap()).unwrap();
    let token = app
        .services
        .links
        .token(service::email::links::Purpose::Confirm, sub);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/public/confirm?token={token}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Scored hot (40 + 30) and enrolled once.
    let e = enrolments_until(&app, &t.token, &chain, |e| e.len() == 1).await;
    let contact = e[0]["contact_id"].as_str().unwrap().to_owned();
    let x = app
        .get(&format!("/api/v1/contacts/{contact}"), &t.token)
        .await;
    assert_eq!(
        (x.body["score"].as_f64(), x.body["tier"].as_str()),
        (Some(70.0), Some("hot")),
        "{}",
        x.text
    );
    let enrolled_at = at(&e[0]["enrolled_at"]);
    let first_at = at(&e[0]["next_at"]);
    assert_eq!(
        first_at,
        moscow_window(enrolled_at + chrono::Duration::minutes(60))
    );

    // Nothing before its time; step 1 at it, once.
    assert_eq!(
        app.services
            .chain_tick(first_at - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.services.chain_tick(first_at).await.unwrap(), 1);
    assert_eq!(app.services.chain_tick(first_at).await.unwrap(), 0);
    let mails = sink.wait_for(2).await;
    let m1 = parse_mail(&mails[1]);
    assert_eq!(
        (m1.subject.as_str(), m1.to.as_str()),
        ("Welcome", "visitor@example.com")
    );
    assert!(m1.list_unsubscribe.is_some());
    // Opened and clicked, through the tracked links.
    let pixel = paths(&m1.html, 'o');
    let clicks = paths(&m1.html, 'c');
    assert_eq!((pixel.len(), clicks.len()), (1, 1), "{}", m1.html);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects.get(app.url(&pixel[0])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = no_redirects.get(app.url(&clicks[0])).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"], "https://shop.example.com/offer");

    // Step 2 a day after step 1 (in the window); its condition (opened) holds.
    let e = enrolments_until(&app, &t.token, &chain, |e| e[0]["step"] == 1).await;
    let second_at = at(&e[0]["next_at"]);
    assert_eq!(
        second_at,
        moscow_window(first_at + chrono::Duration::days(1))
    );
    assert_eq!(
        app.services
            .chain_tick(second_at - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.services.chain_tick(second_at).await.unwrap(), 1);
    let mails = sink.wait_for(3).await;
    assert_eq!(parse_mail(&mails[2]).subject, "Your offer");

    // Converts: step 3 never goes out.
    let third_at =
        at(&enrolments_until(&app, &t.token, &chain, |e| e[0]["step"] == 2).await[0]["next_at"]);
    let r = app
        .post(
            &format!("/api/v1/contacts/{contact}/outcome"),
            &t.token,
            json!({"converted": true, "value": 90}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.services
        .chain_tick(third_at + chrono::Duration::days(3))
        .await
        .unwrap();
    let e = enrolments_until(&app, &t.token, &chain, |e| e[0]["status"] == "exited").await;
    assert_eq!(e[0]["exit_reason"], "converted");
    assert_eq!(
        chain_deliveries(&app, &t.token).await,
        2,
        "nothing after the conversion"
    );
    let s = app
        .get(&format!("/api/v1/chains/{chain}/stats"), &t.token)
        .await;
    assert_eq!(s.body["enrolled"], 1, "{}", s.text);
    assert_eq!(
        s.body["exited"],
        json!([{"reason": "converted", "count": 1}])
    );
    let st = &s.body["steps"];
    assert_eq!(
        (
            st[0]["sent"].as_u64(),
            st[0]["opened"].as_u64(),
            st[0]["clicked"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{}",
        s.text
    );
    assert_eq!(
        (st[1]["sent"].as_u64(), st[1]["converted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(st[2]["sent"], 0);
    assert_eq!(
        st[2]["exited"],
        json!([{"reason": "converted", "count": 1}])
    );

    // The reverse chain: other customers bought every 10 and 14 days (the
    // median interval of the JTBD `other` is 12 days); with a lead time of
    // 2 days, the visitor's purchase is followed up 10 days later.
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "Come back", "kind": "reverse", "lead_days": 2, "steps": [step("We miss you", 0, Value::Null)]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let reverse = r.body["id"].as_str().unwrap().to_owned();
    let base = Utc::now() - chrono::Duration::days(60);
    for (customer, days) in [("h1", 10), ("h2", 14)] {
        for d in [0, days] {
            let r = app
                .post(
                    &format!("/api/v1/clients/{c}/purchases"),
                    &t.token,
                    json!({"customer_ref": customer, "purchased_at": (base + chrono::Duration::days(d)).to_rfc3339(),
                           "amount": 50, "items": 1, "party_size": 1}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
    }
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/contacts"),
            &t.token,
            json!({"email": "visitor@example.com", "customer_ref": "visitor-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Whole seconds, after the chain was created (purchases before it do
    // not trigger it).
    let bought = (Utc::now() + chrono::Duration::seconds(2))
        .with_nanosecond(0)
        .unwrap();
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/purchases"),
            &t.token,
            json!({"customer_ref": "visitor-1", "purchased_at": bought.to_rfc3339(), "amount": 70, "items": 1, "party_size": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let e = enrolments_until(&app, &t.token, &reverse, |e| e.len() == 1).await;
    let due = at(&e[0]["next_at"]);
    assert_eq!(due, moscow_window(bought + chrono::Duration::days(10)));
    assert_eq!(
        app.services
            .chain_tick(due - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(app.services.chain_tick(due).await.unwrap(), 1);
    let mails = sink.wait_for(4).await;
    assert_eq!(parse_mail(&mails[3]).subject, "We miss you");
    assert_eq!(chain_deliveries(&app, &t.token).await, 3);
    // Rescored several times since: still enrolled once in the first chain.
    let e = app
        .get(&format!("/api/v1/chains/{chain}/enrolments"), &t.token)
        .await;
    assert_eq!(e.body["items"].as_array().unwrap().len(), 1, "{}", e.text);
}

async fn chains_validate_and_pause(mode: Mode) {
    let app = tests::spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (c, seg) = shop_with_hot_segment(&app, &t.token).await;
    // Due in 10 hours: the worker's own tick (real time) leaves it alone.
    let ok_step = json!({"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 600});
    for (body, field) in [
        (
            json!({"name": "x", "kind": "segment", "steps": [ok_step]}),
            "segment_id",
        ),
        (
            json!({"name": "x", "kind": "reverse", "segment_id": seg, "steps": [ok_step]}),
            "segment_id",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "steps": []}),
            "steps",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "window_start": "21:00", "window_end": "08:00", "steps": [ok_step]}),
            "window_end",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "window_start": "9am", "steps": [ok_step]}),
            "window_start",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "steps": [{"subject": "Hi", "html": "{% if %}", "text": "x", "delay_minutes": 0}]}),
            "steps[0].html",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "steps": [{"subject": "Hi", "html": "x", "text": "x", "delay_minutes": -1}]}),
            "steps[0].delay_minutes",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "steps": [{"subject": "Hi", "html": "x", "text": "x", "delay_minutes": 0, "condition": "opened"}]}),
            "steps[0].condition",
        ),
        (
            json!({"name": "x", "kind": "reverse", "lead_days": 400, "steps": [ok_step]}),
            "lead_days",
        ),
        (
            json!({"name": "x", "kind": "sideways", "steps": [ok_step]}),
            "kind",
        ),
        (
            json!({"name": "x", "kind": "segment", "segment_id": seg, "steps": [ok_step], "colour": 1}),
            "colour",
        ),
    ] {
        let r = app
            .post(
                &format!("/api/v1/clients/{c}/chains"),
                &t.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.error_fields().iter().any(|f| f == field),
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .get(&format!("/api/v1/clients/{c}/chains"), &t.token)
        .await;
    assert_eq!(r.body["items"], json!([]), "nothing stored");
    let chain = app
        .create(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "Warm-up", "kind": "segment", "segment_id": seg, "window_start": "10:30", "window_end": "18:00", "steps": [ok_step]}),
        )
        .await;
    // A hot contact is enrolled; paused, its due step is not sent.
    hot_contact(&app, &t.token, &c, "a@x.io").await;
    let e = enrolments_until(&app, &t.token, &chain, |e| e.len() == 1).await;
    let due = at(&e[0]["next_at"]);
    let r = app
        .post(
            &format!("/api/v1/chains/{chain}/pause"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "paused", "{}", r.text);
    assert_eq!(
        app.services
            .chain_tick(due + chrono::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { resumeChain(id: $id) { status } }",
            json!({"id": chain}),
        )
        .await;
    assert_eq!(
        r.body["data"]["resumeChain"]["status"], "active",
        "{}",
        r.text
    );
    assert_eq!(
        app.services
            .chain_tick(due + chrono::Duration::days(1))
            .await
            .unwrap(),
        1
    );
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { chainStats(id: $id) { enrolled completed steps { sent } } }",
            json!({"id": chain}),
        )
        .await;
    assert_eq!(
        r.body["data"]["chainStats"],
        json!({"enrolled": 1, "completed": 1, "steps": [{"sent": 1}]}),
        "{}",
        r.text
    );
}

async fn the_funnel_report_counts_each_step_as_by_hand(mode: Mode) {
    let app = tests::spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Shop", "timezone": "UTC"}),
        )
        .await;
    let today = Utc::now().date_naive();
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/channel-figures"),
            &t.token,
            json!({"rows": [
                {"day": today, "channel": "rtb", "funnel": "reach", "spend": 120, "impressions": 1000},
                {"day": today, "channel": "search", "funnel": "warming", "spend": 30, "clicks": 10}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.call(
        Method::PUT,
        &format!("/api/v1/clients/{c}/scoring"),
        Some(&t.token),
        Some(json!({"rules": [{"name": "VIP", "points": 100, "when": {"kind": "attr_equals", "key": "vip", "value": "yes"}}]})),
    )
    .await;
    let seg = app
        .create(
            &format!("/api/v1/clients/{c}/segments"),
            &t.token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    let chain = app
        .create(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "Warm-up", "kind": "segment", "segment_id": seg, "steps": [
                {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 600}]}),
        )
        .await;
    // Reach: a and b hot, b already converted (so not enrolled), c cold;
    // warming: d cold, did not convert.
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{c}/contacts/import"),
            Some(&t.token),
            "text/csv",
            "email,funnel,vip,converted\na@x.io,reach,yes,\nb@x.io,reach,yes,true\nc@x.io,reach,no,\nd@x.io,warming,no,false\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    enrolments_until(&app, &t.token, &chain, |e| e.len() == 1).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let rep = loop {
        let r = app
            .get(
                &format!("/api/v1/clients/{c}/funnel-report?from={today}&to={today}"),
                &t.token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["funnels"][0]["qualified"] == 2 {
            break r.body;
        }
        assert!(Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        rep["funnels"][0],
        json!({"funnel": "reach", "spend": 120.0, "contacts": 3, "qualified": 2, "enrolled": 1, "converted": 1,
               "qualified_rate": 2.0 / 3.0, "enrolled_rate": 0.5, "converted_rate": 1.0,
               "spend_per_contact": 40.0, "spend_per_qualified": 60.0, "spend_per_conversion": 120.0})
    );
    assert_eq!(
        rep["funnels"][1],
        json!({"funnel": "warming", "spend": 30.0, "contacts": 1, "qualified": 0, "enrolled": 0, "converted": 0,
               "qualified_rate": 0.0, "enrolled_rate": null, "converted_rate": null,
               "spend_per_contact": 30.0, "spend_per_qualified": null, "spend_per_conversion": null})
    );
    assert_eq!(rep["funnels"][2]["funnel"], "reverse");
    assert_eq!(rep["funnels"][2]["contacts"], 0);
    assert_eq!(rep["funnels"][2]["spend_per_contact"], Value::Null);
    let r = app
        .get(
            &format!("/api/v1/clients/{c}/funnel-report?from=2026-13-01"),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), vec!["from"]);
    let r = app
        .graphql(
            Some(&t.token),
            "query($c: ID!, $d: String!) { funnelReport(clientId: $c, from: $d, to: $d) { funnels { funnel contacts converted } } }",
            json!({"c": c, "d": today.to_string()}),
        )
        .await;
    assert_eq!(
        r.body["data"]["funnelReport"]["funnels"][0],
        json!({"funnel": "REACH", "contacts": 3, "converted": 1}),
        "{}",
        r.text
    );
}

/// Every new write route of the funnel side, sent bodies of the wrong JSON
/// type, broken JSON, NUL characters and out-of-range numbers: a 4xx naming
/// the field, never a 5xx, nothing stored.
async fn funnel_routes_refuse_bad_bodies(mode: Mode) {
    let app = tests::spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let contact = app
        .post(
            &format!("/api/v1/clients/{c}/contacts"),
            &t.token,
            json!({"email": "a@x.io"}),
        )
        .await;
    let contact = contact.body["id"].as_str().unwrap().to_owned();
    let seg = app
        .create(
            &format!("/api/v1/clients/{c}/segments"),
            &t.token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    let chain = app
        .create(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "C", "kind": "segment", "segment_id": seg, "steps": [
                {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 600}]}),
        )
        .await;
    let routes = [
        (Method::POST, format!("/api/v1/clients/{c}/contacts")),
        (Method::POST, format!("/api/v1/clients/{c}/contacts/batch")),
        (Method::POST, format!("/api/v1/contacts/{contact}/outcome")),
        (Method::PUT, format!("/api/v1/clients/{c}/scoring")),
        (Method::POST, format!("/api/v1/clients/{c}/chains")),
        (Method::PUT, format!("/api/v1/chains/{chain}")),
    ];
    // Scored once (later rescorings change nothing of it).
    let deadline = Instant::now() + Duration::from_secs(60);
    while app
        .get(&format!("/api/v1/contacts/{contact}"), &t.token)
        .await
        .body["scored_at"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "never scored");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let before = (
        app.get(&format!("/api/v1/clients/{c}/contacts"), &t.token)
            .await
            .body,
        app.get(&format!("/api/v1/clients/{c}/scoring"), &t.token)
            .await
            .body,
        app.get(&format!("/api/v1/chains/{chain}"), &t.token)
            .await
            .body,
    );
    for (method, path) in &routes {
        for body in [
            "[null, null]".to_owned(),
            "\"text\"".to_owned(),
            "{".to_owned(),
            "{\"email\": \"a\\u0000@x.io\", \"name\": 1}".to_owned(),
            format!(
                "{{\"rules\": [{}]}}",
                "{\"name\": \"x\", \"points\": 1e309}"
            ),
            format!("{{\"email\": \"{}@x.io\"}}", "a".repeat(3_000_000)),
        ] {
            let r = app
                .raw(
                    method.clone(),
                    path,
                    Some(&t.token),
                    "application/json",
                    body.clone(),
                )
                .await;
            assert!(
                r.status.is_client_error(),
                "{method} {path} with {}: {} {}",
                &body[..body.len().min(60)],
                r.status,
                &r.text[..r.text.len().min(300)]
            );
        }
    }
    let after = (
        app.get(&format!("/api/v1/clients/{c}/contacts"), &t.token)
            .await
            .body,
        app.get(&format!("/api/v1/clients/{c}/scoring"), &t.token)
            .await
            .body,
        app.get(&format!("/api/v1/chains/{chain}"), &t.token)
            .await
            .body,
    );
    assert_eq!(before, after, "a refused body changed something");
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim_end() == line)
}

/// The client digest's funnel section: the 4 weeks' new contacts,
/// qualified, converted and CPA, and their change since the last digest.
async fn the_digest_reports_the_funnel_and_its_change(mode: Mode) {
    let app = tests::spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Shop", "timezone": "UTC", "locale": "en"}),
        )
        .await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{c}/digest-settings"),
            Some(&t.token),
            Some(json!({"schedule": "weekly", "report_recipients": ["ceo@shop.example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let today = Utc::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    let put_days = |leads: i64, spend: f64| json!({"rows": [{"day": yesterday, "channel": "search", "funnel": "warming", "spend": spend, "clicks": 40, "leads": leads}]});
    app.post(
        &format!("/api/v1/clients/{c}/channel-figures"),
        &t.token,
        put_days(4, 200.0),
    )
    .await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{c}/contacts/import"),
            Some(&t.token),
            "text/csv",
            "email,converted\na@x.io,true\nb@x.io,\nc@x.io,\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let send = || async {
        let r = app
            .post(
                &format!("/api/v1/clients/{c}/digest/send"),
                &t.token,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    };
    let outbox = app.settings.outbox_dir();
    send().await;
    let first = tests::parse_mail(&tests::wait_for_files(&outbox, 1).await[0]);
    assert!(
        first.text.contains("Funnel, last 4 weeks:"),
        "{}",
        first.text
    );
    for line in ["- New contacts: 3", "- Converted: 1", "- CPA: 50.00"] {
        assert!(has_line(&first.text, line), "{line}: {}", first.text);
    }
    assert!(
        first.html.contains("Funnel, last 4 weeks"),
        "{}",
        first.html
    );
    // Two more contacts, one converted, and cheaper leads.
    app.post(
        &format!("/api/v1/clients/{c}/channel-figures"),
        &t.token,
        put_days(8, 200.0),
    )
    .await;
    app.raw(
        Method::POST,
        &format!("/api/v1/clients/{c}/contacts/import"),
        Some(&t.token),
        "text/csv",
        "email,converted\nd@x.io,true\ne@x.io,\n",
    )
    .await;
    send().await;
    let mails = tests::wait_for_files(&outbox, 2).await;
    let second = mails
        .iter()
        .map(|m| tests::parse_mail(m))
        .find(|m| m.text.contains("New contacts: 5"))
        .expect("a second digest");
    for line in [
        "- New contacts: 5 (+2 since the last report)",
        "- Converted: 2 (+1 since the last report)",
        "- CPA: 25.00 (-25.00 since the last report)",
    ] {
        assert!(has_line(&second.text, line), "{line}: {}", second.text);
    }
}

/// A chain email the server refuses for good (550) bounces the contact at
/// once — it has no list subscription to carry the bounce — and its
/// enrolment ends with `bounced` before the next step.
async fn a_refused_chain_email_bounces_the_contact_and_ends_its_enrolment(mode: Mode) {
    let sink = SmtpSink::start(&["--reject", "^gone@"]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let (c, seg) = shop_with_hot_segment(&app, &t.token).await;
    let step = |delay: i64| json!({"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": delay});
    let chain = app
        .create(
            &format!("/api/v1/clients/{c}/chains"),
            &t.token,
            json!({"name": "Warm-up", "kind": "segment", "segment_id": seg, "steps": [step(600), step(6000)]}),
        )
        .await;
    hot_contact(&app, &t.token, &c, "gone@x.io").await;
    let e = enrolments_until(&app, &t.token, &chain, |e| e.len() == 1).await;
    let due = at(&e[0]["next_at"]);
    assert_eq!(app.services.chain_tick(due).await.unwrap(), 1);
    let e = enrolments_until(&app, &t.token, &chain, |e| e[0]["status"] != "active").await;
    assert_eq!(
        (e[0]["status"].as_str(), e[0]["exit_reason"].as_str()),
        (Some("exited"), Some("bounced")),
        "{e:?}"
    );
    let r = app
        .get(
            &format!("/api/v1/contacts/{}", e[0]["contact_id"].as_str().unwrap()),
            &t.token,
        )
        .await;
    assert_eq!(r.body["status"], "bounced", "{}", r.text);
    // Nothing more goes to it.
    assert_eq!(
        app.services
            .chain_tick(due + chrono::Duration::days(30))
            .await
            .unwrap(),
        0
    );
    assert_eq!(chain_deliveries(&app, &t.token).await, 1);
}

both_modes!(
    a_refused_chain_email_bounces_the_contact_and_ends_its_enrolment,
    the_digest_reports_the_funnel_and_its_change,
    funnel_routes_refuse_bad_bodies,
    a_hot_visitor_goes_through_the_chain_once_and_a_purchase_starts_the_reverse_one,
    chains_validate_and_pause,
    the_funnel_report_counts_each_step_as_by_hand,
);
