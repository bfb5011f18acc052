//! Every kind of email as the embedded default writes it (`.eml` files in
//! the outbox), made through the API on the demo agency, then turned into
//! one HTML file per email with its inline images (`cid:`) as `data:` URIs,
//! so a browser shows exactly what a mail client would. Used by
//! `scripts/email-screenshots.sh`, which renders each file to a PNG in
//! headless Chromium.
//!
//! ```text
//! cargo run -p tests --bin email_gallery -- --out target/email-screenshots
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use mail_parser::MimeHeaders;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TestApp, ndjson_rows, panel, spawn_with};

fn out_dir() -> PathBuf {
    let mut it = std::env::args().skip(1);
    match (it.next().as_deref(), it.next()) {
        (Some("--out"), Some(d)) => PathBuf::from(d),
        _ => panic!("usage: email_gallery --out DIR"),
    }
}

async fn deliveries(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/v1/deliveries?limit=200", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// The HTML part of a raw message with every `cid:` image inlined.
fn html_with_inline_images(raw: &[u8]) -> (String, String) {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let mut html = m.body_html(0).map(|h| h.into_owned()).unwrap_or_default();
    for part in &m.parts {
        let Some(cid) = part.content_id() else {
            continue;
        };
        let ct = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
            .unwrap_or_else(|| "application/octet-stream".into());
        let data = base64::engine::general_purpose::STANDARD.encode(part.contents());
        html = html.replace(&format!("cid:{cid}"), &format!("data:{ct};base64,{data}"));
    }
    (m.subject().unwrap_or_default().to_owned(), html)
}

#[tokio::main]
async fn main() {
    let out = out_dir();
    std::fs::create_dir_all(&out).unwrap();
    let app = spawn_with(Mode::Sqlite, |_| {}).await;
    let demo = api::demo::load(&app.services)
        .await
        .unwrap()
        .expect("a fresh world");
    let token = app
        .login(api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD)
        .await;

    // Digests: the demo developer's (Russian, three factors) and an English
    // client's, each to one report recipient.
    let owner = tests::Tenant {
        token: token.clone(),
        agency_id: demo.agency_id.to_string(),
        user_id: String::new(),
        email: api::demo::DEMO_EMAIL.into(),
    };
    let en = panel(&app, &owner).await;
    app.import_ndjson(&token, &en.questionnaire, ndjson_rows("g-", 60))
        .await;
    app.wait_for_summary(&token, &en.questionnaire, 1).await;
    let (_, developer) = &demo.clients[0];
    // The demo's panels as the worker computed them from its imports.
    let qs = app
        .get(
            &format!("/api/v1/clients/{developer}/questionnaires"),
            &token,
        )
        .await;
    for q in qs.body["items"].as_array().unwrap() {
        if q["kind"] == "customer_panel" {
            let version = q["data_version"].as_i64().unwrap_or(0);
            app.wait_for_summary(&token, q["id"].as_str().unwrap(), version)
                .await;
        }
    }
    for client in [developer.to_string(), en.client.clone()] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/clients/{client}"),
                Some(&token),
                Some(json!({"report_recipients": ["ceo@client.example.com"]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = app
            .post(
                &format!("/api/v1/clients/{client}/digest/send"),
                &token,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }

    // Double opt-in and a newsletter on a list of the English client.
    let list = app
        .create(
            &format!("/api/v1/clients/{}/lists", en.client),
            &token,
            json!({"name": "Club news", "consent_text": "I agree to receive the club's news by email."}),
        )
        .await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/public/lists/{list}/subscribe"),
            None,
            Some(json!({"email": "reader@example.com", "name": "Rita", "consent": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{list}/subscribers/import"),
            Some(&token),
            "text/csv",
            "email,name,consent_source\nbob@example.com,Bob,fair 2026\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let campaign = app
        .create(
            &format!("/api/v1/clients/{}/campaigns", en.client),
            &token,
            json!({"list_id": list, "name": "November", "subject": "November at the club, {{ subscriber.name }}",
                   "html": "<p>Hello {{ subscriber.name }},</p><p>The pool reopens on Monday, and the new evening classes start next week.</p><ul><li>Yoga, Tuesdays 19:00</li><li>Cycling, Thursdays 20:00</li></ul>",
                   "text": "Hello {{ subscriber.name }}, the pool reopens on Monday."}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/send"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // A recompute that fails every attempt: the "job failed" alert.
    tests::failing_recompute(&app.services.db, demo.agency_id).await;

    // The demo's fitness club raised UX alerts on its own.
    let kinds = ["ux_alerts", "digest", "confirm", "newsletter", "job_failed"];
    let deadline = Instant::now() + Duration::from_secs(120);
    let sent = loop {
        let d = deliveries(&app, &token).await;
        let done = kinds.iter().all(|k| {
            d.iter()
                .any(|x| x["kind"] == *k && (x["status"] == "sent" || x["status"] == "failed"))
        }) && d.iter().all(|x| x["status"] != "queued");
        if done {
            break d;
        }
        assert!(Instant::now() < deadline, "not every kind was sent: {d:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // One HTML file per email, named by kind.
    let files: BTreeMap<String, Value> = sent
        .iter()
        .filter(|d| d["status"] == "sent")
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d.clone()))
        .collect();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (id, d) in &files {
        let raw = std::fs::read(app.settings.outbox_dir().join(format!("{id}.eml"))).unwrap();
        let kind = d["kind"].as_str().unwrap();
        let n = count.entry(kind.to_owned()).or_default();
        *n += 1;
        let (subject, html) = html_with_inline_images(&raw);
        let name = format!("{kind}-{n}");
        std::fs::write(out.join(format!("{name}.html")), &html).unwrap();
        std::fs::write(out.join(format!("{name}.eml")), &raw).unwrap();
        println!("{name}.html\t{subject}");
    }
}
