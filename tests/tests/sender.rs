//! A client's own sender (issue 13, item 7): its From, Reply-To and SMTP
//! server carry its newsletters, the SMTP URL is sealed at rest and never
//! returned, a test email goes out at once, and clearing it brings the
//! global server back — on SQLite and on PostgreSQL, with two real SMTP
//! servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tests::{Mode, SmtpSink, both_modes, newsletter, spawn_with};

async fn a_client_sender_carries_its_emails(mode: Mode) {
    let global = SmtpSink::start(&[]);
    // The client's own server takes only its credentials.
    let own = SmtpSink::start(&["--auth", "shop:very-secret"]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(global.url())).await;
    let news = newsletter(&app, 3, "<p>Hello {{ subscriber.name }}!</p>").await;
    let (t, c) = (&news.owner, &news.client);
    let path = format!("/api/v1/clients/{c}/sender");

    // No sender yet: everything global.
    let r = app.get(&path, &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["smtp_configured"], false);
    assert!(r.body["from_address"].is_null());

    let url = format!("smtp://shop:very-secret@127.0.0.1:{}", own.port);
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&t.token),
            Some(
                json!({"from_name": "Shop News", "from_address": "news@shop.example",
                "reply_to": "help@shop.example", "smtp_url": url}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["smtp_configured"], true);
    assert_eq!(r.body["smtp_host"], "127.0.0.1");
    assert!(!r.text.contains("very-secret"), "{}", r.text);
    // Nor is the URL in the database as text.
    let db = &app.services.db;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT smtp_url_sealed FROM client_senders",
        ))
        .await
        .unwrap()
        .unwrap();
    let sealed: String = row.try_get("", "smtp_url_sealed").unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains("secret"));
    let r = app
        .post(
            &format!("{path}/test"),
            &t.token,
            json!({"to": "me@agency.example"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (&r.body["delivered"], &r.body["via"]),
        (&json!(true), &json!("client_smtp")),
        "{}",
        r.text
    );
    let got = own.wait_for(1).await;
    assert!(
        got[0].contains("From: \"Shop News\" <news@shop.example>")
            || got[0].contains("From: Shop News <news@shop.example>"),
        "{}",
        got[0]
    );

    // The newsletter leaves from the client's sender, through its server.
    news.send(&app).await;
    news.wait_all_sent(&app, 3, 60, |_| {}).await;
    let got = own.wait_for(4).await;
    let letters: Vec<&String> = got
        .iter()
        .filter(|m| m.contains("News for Reader"))
        .collect();
    assert_eq!(letters.len(), 3);
    for m in &letters {
        assert!(m.contains("news@shop.example"), "{m}");
        assert!(m.contains("Reply-To: help@shop.example"), "{m}");
    }
    assert!(
        global
            .messages()
            .iter()
            .all(|m| !m.contains("News for Reader"))
    );

    // The URL cleared (From kept): the global server again.
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&t.token),
            Some(json!({"from_address": "news@shop.example", "clear_smtp_url": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["smtp_configured"].clone(),
            r.body["smtp_host"].clone()
        ),
        (json!(false), json!(null))
    );
    let r = app
        .post(
            &format!("{path}/test"),
            &t.token,
            json!({"to": "me@agency.example"}),
        )
        .await;
    assert_eq!(r.body["via"], "global", "{}", r.text);
    let got = global.wait_for(1).await;
    assert!(got.iter().any(|m| m.contains("news@shop.example")));

    // Back to the global sender altogether.
    let r = app.call(Method::DELETE, &path, Some(&t.token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&path, &t.token).await;
    assert!(r.body["from_address"].is_null() && r.body["updated_at"].is_null());
}

async fn bad_senders_are_refused_and_change_nothing(mode: Mode) {
    let app = spawn_with(mode, |_| {}).await;
    let t = app.signup("Acme").await;
    let c = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let path = format!("/api/v1/clients/{c}/sender");
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&t.token),
            Some(json!({"from_address": "ok@shop.example"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let before = app.get(&path, &t.token).await.body;
    for (body, field) in [
        (json!({"from_address": "not an address"}), "from_address"),
        (json!({"reply_to": "x@"}), "reply_to"),
        (
            json!({"from_name": "Evil\r\nBcc: all@x.example"}),
            "from_name",
        ),
        (json!({"from_name": "x".repeat(101)}), "from_name"),
        (json!({"smtp_url": "http://mail.example"}), "smtp_url"),
        (json!({"smtp_url": "smtp://"}), "smtp_url"),
        (
            json!({"smtp_url": "smtp://m.example", "clear_smtp_url": true}),
            "clear_smtp_url",
        ),
        (json!({"from_address": 5}), "from_address"),
        (json!({"bcc": "all@x.example"}), "bcc"),
    ] {
        let r = app
            .call(Method::PUT, &path, Some(&t.token), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.error_fields().iter().any(|f| f.contains(field)),
            "{body}: {:?}",
            r.error_fields()
        );
    }
    let r = app
        .post(&format!("{path}/test"), &t.token, json!({"to": "nobody"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["to"]);
    assert_eq!(app.get(&path, &t.token).await.body, before);
    // A viewer reads but does not change it.
    let viewer = app.member(&t, "viewer").await;
    assert_eq!(app.get(&path, &viewer).await.status, StatusCode::OK);
    let r = app
        .call(Method::PUT, &path, Some(&viewer), Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

both_modes!(
    a_client_sender_carries_its_emails,
    bad_senders_are_refused_and_change_nothing,
);
