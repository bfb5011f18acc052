//! Subscribers and newsletters end to end through a real SMTP server:
//! consent recorded by the public subscribe endpoint (CORS per list),
//! double opt-in, a personalised campaign to the active subscribers only,
//! RFC 8058 one-click unsubscribe, forged links refused, export and erasure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mail, Mode, SmtpSink, TestApp, both_modes, parse_mail, spawn_with};

const SHOP: &str = "https://shop.example.com";

/// The path and query of a link the API put in an email.
fn path_of(url: &str) -> String {
    let i = url.find("/api/v1/").expect("an API link");
    url[i..].trim_end_matches('>').to_owned()
}

fn link_in(text: &str, what: &str) -> String {
    // HTML attributes carry entities (minijinja escapes `/` too).
    let text = &text
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&");
    let start = text
        .find(&format!("/api/v1/public/{what}?token="))
        .expect("a link");
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

async fn public(
    app: &TestApp,
    method: Method,
    path: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = app.http.request(method, app.url(path));
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

async fn wait_stats(app: &TestApp, token: &str, campaign: &str, sent: i64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = app
            .get(&format!("/api/v1/campaigns/{campaign}/stats"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["sent"].as_i64() == Some(sent) && r.body["status"] == "sent" {
            return r.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "campaign stuck: {}",
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn subscribe_confirm_send_unsubscribe(mode: Mode) {
    // The server refuses one address for good (550).
    let sink = SmtpSink::start(&["--reject", "^gone@"]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Shop", "locale": "en"}),
        )
        .await;
    let list = app
        .create(
            &format!("/api/v1/clients/{client}/lists"),
            &t.token,
            json!({"name": "Shop news", "consent_text": "I agree to receive the shop's news.", "allowed_origins": [SHOP]}),
        )
        .await;
    let sub_path = format!("/api/v1/public/lists/{list}/subscribe");

    // CORS: the list's site may call from a browser, another site may not.
    let (s, h, _) = public(&app, Method::OPTIONS, &sub_path, Some(SHOP), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["access-control-allow-origin"], SHOP);
    let (_, h, _) = public(
        &app,
        Method::OPTIONS,
        &sub_path,
        Some("https://evil.example.com"),
        None,
    )
    .await;
    assert!(h.get("access-control-allow-origin").is_none());

    // Bad subscriptions store nothing.
    for (body, field) in [
        (
            json!({"email": "reader@x.example.com", "consent": false}),
            "consent",
        ),
        (json!({"email": "not an email", "consent": true}), "email"),
        (
            json!({"email": "reader@x.example.com", "consent": true, "consent_version": 7}),
            "consent_version",
        ),
    ] {
        let (s, _, text) = public(&app, Method::POST, &sub_path, Some(SHOP), Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
        assert!(text.contains(field), "{text}");
    }
    let (s, _, text) = public(
        &app,
        Method::POST,
        &sub_path,
        None,
        Some(json!({"email": "a@x.example.com", "consent": true, "colour": "red"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");

    let (s, h, text) = public(
        &app,
        Method::POST,
        &sub_path,
        Some(SHOP),
        Some(json!({"email": "Reader@X.example.com", "name": "Rita", "consent": true, "source_page": "https://shop.example.com/news"})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{text}");
    assert_eq!(h["access-control-allow-origin"], SHOP);
    // A second, never confirmed subscriber gets no newsletter.
    let (s, _, _) = public(
        &app,
        Method::POST,
        &sub_path,
        None,
        Some(json!({"email": "lurker@x.example.com", "consent": true})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // Double opt-in: the confirmation email carries the signed link.
    let mails: Vec<Mail> = sink
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let confirm_mail = mails
        .iter()
        .find(|m| m.to == "reader@x.example.com")
        .unwrap();
    assert!(
        confirm_mail.subject.contains("confirm"),
        "{}",
        confirm_mail.subject
    );
    assert!(
        confirm_mail
            .text
            .contains("I agree to receive the shop's news.")
    );
    let confirm = link_in(&confirm_mail.text, "confirm");
    assert_eq!(link_in(&confirm_mail.html, "confirm"), confirm);
    let mut forged = confirm.clone();
    forged.pop();
    forged.push(if confirm.ends_with('A') { 'B' } else { 'A' });
    let (s, _, _) = public(&app, Method::GET, &forged, None, None).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a forged confirm link is refused"
    );
    for _ in 0..2 {
        let (s, _, text) = public(&app, Method::GET, &confirm, None, None).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        assert!(text.contains("reader@x.example.com"));
    }
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &t.token)
        .await;
    let reader = subs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "reader@x.example.com")
        .unwrap()
        .clone();
    assert_eq!(reader["status"], "active");
    assert_eq!(reader["consent_version"], 1);
    assert_eq!(reader["consent_source"], "https://shop.example.com/news");
    assert_eq!(reader["consent_ip"], "127.0.0.1");
    assert!(reader["confirmed_at"].is_string());

    // Existing subscribers come in with their consent; a bad file stores nothing.
    let bad = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{list}/subscribers/import"),
            Some(&t.token),
            "text/csv",
            "email,consent_source\nok@x.example.com,fair\nnot-an-email,fair\n",
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    let r = app
        .raw(Method::POST, &format!("/api/v1/lists/{list}/subscribers/import"), Some(&t.token), "text/csv",
            "email,name,consent_source,consent_at\nb@x.example.com,<b>Bob</b>,fair 2025,2025-06-01T10:00:00Z\nc@x.example.com,Cleo,fair 2025,\ngone@x.example.com,Gus,fair 2025,\n")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], 3);

    // A personalised campaign to the three active subscribers.
    let campaign = app
        .create(
            &format!("/api/v1/clients/{client}/campaigns"),
            &t.token,
            json!({"list_id": list, "name": "November", "subject": "News for {{ subscriber.name }}",
                   "html": "<p>Hello {{ subscriber.name }}!</p>", "text": "Hello {{ subscriber.name }}!"}),
        )
        .await;
    let bad = app
        .post(&format!("/api/v1/clients/{client}/campaigns"), &t.token,
            json!({"list_id": list, "name": "x", "subject": "{{ broken", "html": "<p>x</p>", "text": "x"}))
        .await;
    assert_eq!(
        (bad.status, bad.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["subject".to_owned()])
    );
    let r = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/send"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stats = wait_stats(&app, &t.token, &campaign, 3).await;
    assert_eq!(
        (stats["total"].as_i64(), stats["failed"].as_i64()),
        (Some(4), Some(1)),
        "{stats}"
    );
    // The refused address bounced: it is not mailed again.
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &t.token)
        .await;
    let gone = subs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "gone@x.example.com")
        .unwrap();
    assert_eq!(gone["status"], "bounced");
    let r = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/send"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "a sent campaign is not sent again"
    );
    let news: Vec<Mail> = sink
        .wait_for(5)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .filter(|m| m.subject.starts_with("News for"))
        .collect();
    assert_eq!(news.len(), 3);
    let mut to: Vec<&str> = news.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(
        to,
        ["b@x.example.com", "c@x.example.com", "reader@x.example.com"]
    );
    let bob = news.iter().find(|m| m.to == "b@x.example.com").unwrap();
    assert_eq!(bob.subject, "News for <b>Bob</b>");
    assert!(
        bob.html.contains("Hello &lt;b&gt;Bob&lt;&#x2f;b&gt;!"),
        "escaped in HTML: {}",
        bob.html
    );
    assert!(bob.text.contains("Hello <b>Bob</b>!"), "{}", bob.text);
    for m in &news {
        assert_eq!(
            m.list_unsubscribe_post.as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let lu = m.list_unsubscribe.as_deref().unwrap();
        assert!(lu.starts_with('<') && lu.ends_with('>'), "{lu}");
        assert!(
            m.text.contains(&link_in(lu, "unsubscribe")),
            "the footer link is the header's"
        );
    }

    // One-click unsubscribe: a GET only shows a button; the POST unsubscribes,
    // twice is fine, a forged token is refused.
    let rita = news
        .iter()
        .find(|m| m.to == "reader@x.example.com")
        .unwrap();
    let unsub = path_of(rita.list_unsubscribe.as_deref().unwrap());
    let (s, _, page) = public(&app, Method::GET, &unsub, None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<form method=\"post\""));
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &t.token)
        .await;
    assert!(subs.text.contains("\"status\":\"active\""));
    for _ in 0..2 {
        let r = app
            .http
            .post(app.url(&unsub))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let mut forged = unsub.clone();
    forged.pop();
    forged.push(if unsub.ends_with('A') { 'B' } else { 'A' });
    let r = app.http.post(app.url(&forged)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = public(
        &app,
        Method::GET,
        &link_in(&confirm_mail.text, "confirm").replace("confirm?", "unsubscribe?"),
        None,
        None,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a confirm token does not unsubscribe"
    );
    let rid = reader["id"].as_str().unwrap();
    let export = app
        .get(&format!("/api/v1/subscribers/{rid}/export"), &t.token)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert_eq!(export.body["subscriber"]["status"], "unsubscribed");
    assert_eq!(
        export.body["subscriber"]["consent_text"],
        "I agree to receive the shop's news."
    );
    let kinds: Vec<&str> = export.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["confirm", "newsletter"]);
    let stats = app
        .get(&format!("/api/v1/campaigns/{campaign}/stats"), &t.token)
        .await;
    assert_eq!(stats.body["unsubscribed"], 1);

    // Erasure: the record goes, the address leaves the delivery log.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/subscribers/{rid}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/subscribers/{rid}/export"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let d = app.get("/api/v1/deliveries?limit=200", &t.token).await;
    assert!(!d.text.contains("reader@x.example.com"), "{}", d.text);

    // Test sends are marked; a scheduled campaign can be cancelled.
    let r = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/test"),
            &t.token,
            json!({"emails": ["qa@acme.example.com"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let all: Vec<Mail> = sink
        .wait_for(6)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    assert!(
        all.iter()
            .any(|m| m.to == "qa@acme.example.com" && m.subject.starts_with("[TEST] News for"))
    );
    let later = app
        .create(&format!("/api/v1/clients/{client}/campaigns"), &t.token,
            json!({"list_id": list, "name": "Later", "subject": "Later", "html": "<p>x</p>", "text": "x"}))
        .await;
    let r = app
        .post(
            &format!("/api/v1/campaigns/{later}/schedule"),
            &t.token,
            json!({"at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["at".to_owned()])
    );
    let r = app
        .post(
            &format!("/api/v1/campaigns/{later}/schedule"),
            &t.token,
            json!({"at": "2099-01-01T09:00:00Z"}),
        )
        .await;
    assert_eq!(r.body["status"], "scheduled", "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/campaigns/{later}/cancel"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "cancelled", "{}", r.text);
}

both_modes!(subscribe_confirm_send_unsubscribe);
