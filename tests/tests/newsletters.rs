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
        StatusCode::NOT_FOUND,
        "a forged confirm link names no subscription"
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
    // So is its contact, without waiting for other news of the client.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app
            .get(
                &format!("/api/v1/clients/{client}/contacts?email=gone@"),
                &t.token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["items"][0]["status"] == "bounced" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
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
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
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
        StatusCode::NOT_FOUND,
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

/// Subscribers carry attributes (at subscribe, as extra CSV columns, in the
/// export); a campaign to a list and a saved segment reaches only the
/// list's active subscribers whose attributes match, and says so in its
/// total and stats. Over GraphQL too, with the campaign's list, segment and
/// stats resolved per item.
async fn a_campaign_to_a_segment_reaches_only_its_subscribers(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&t.token),
            Some(json!({"logo_url": "https://cdn.acme.example.com/logo.png", "brand_colour": "#FF6600"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Estate", "locale": "en"}),
        )
        .await;
    let other_client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Other"}))
        .await;
    let list = app
        .create(
            &format!("/api/v1/clients/{client}/lists"),
            &t.token,
            json!({"name": "Buyers", "consent_text": "I agree to news about flats."}),
        )
        .await;
    let import = |csv: &'static str| {
        let app = &app;
        let token = t.token.clone();
        let list = list.clone();
        async move {
            app.raw(
                Method::POST,
                &format!("/api/v1/lists/{list}/subscribers/import"),
                Some(&token),
                "text/csv",
                csv,
            )
            .await
        }
    };
    let bad = import("email,consent_source,Home City\nx@x.example.com,fair,msk\n").await;
    assert_eq!(
        (bad.status, bad.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["header".to_owned()]),
        "{}",
        bad.text
    );
    let r = import(
        "email,consent_source,city,interests,budget\n\
         ann@x.example.com,fair,msk,parents;gift,4000000\n\
         bob@x.example.com,fair,spb,parents,4000000\n\
         cat@x.example.com,fair,msk,gift,1000000\n\
         dan@x.example.com,fair,msk,parents,3500000\n\
         eve@x.example.com,fair,,,\n",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], 5);
    // Subscribing with attributes; bad ones name their key. A pending
    // (unconfirmed) subscriber gets no newsletter even if they match.
    let sub_path = format!("/api/v1/public/lists/{list}/subscribe");
    let (s, _, text) = public(
        &app,
        Method::POST,
        &sub_path,
        None,
        Some(json!({"email": "fay@x.example.com", "consent": true, "attributes": {"city": {"name": "msk"}}})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("attributes.city"), "{text}");
    let (s, _, text) = public(
        &app,
        Method::POST,
        &sub_path,
        None,
        Some(json!({"email": "fay@x.example.com", "consent": true,
                    "attributes": {"city": "msk", "interests": ["parents"], "budget": 4200000}})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{text}");
    // The confirmation email carries the agency's branding.
    let confirm = parse_mail(&sink.wait_for(1).await[0]);
    assert!(
        confirm
            .html
            .contains("https:&#x2f;&#x2f;cdn.acme.example.com&#x2f;logo.png"),
        "the logo at the top: {}",
        confirm.html
    );
    assert!(
        confirm.html.contains("background:#ff6600"),
        "{}",
        confirm.html
    );

    let subs = app
        .get(
            &format!("/api/v1/lists/{list}/subscribers?limit=50"),
            &t.token,
        )
        .await;
    let by_email = |e: &str| {
        subs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["email"] == e)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_email("ann@x.example.com")["attributes"],
        json!({"city": "msk", "interests": ["parents", "gift"], "budget": 4000000})
    );
    assert_eq!(by_email("eve@x.example.com")["attributes"], json!({}));
    assert_eq!(by_email("fay@x.example.com")["status"], "pending");
    let ann = by_email("ann@x.example.com")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = app
        .get(&format!("/api/v1/subscribers/{ann}/export"), &t.token)
        .await;
    assert_eq!(export.body["subscriber"]["attributes"]["city"], "msk");

    // "Buy for parents, 3–5M budget, Moscow".
    let filter = json!({"conditions": [
        {"question": "city", "values": ["msk"]},
        {"question": "interests", "values": ["parents"]},
        {"question": "budget", "min": 3000000, "max": 5000000}
    ]});
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Parents in Moscow", "filter": filter}),
        )
        .await;
    let foreign = app
        .create(
            &format!("/api/v1/clients/{other_client}/segments"),
            &t.token,
            json!({"name": "Elsewhere", "filter": filter}),
        )
        .await;
    let body = |seg: &str| {
        json!({"list_id": list, "segment_id": seg, "name": "Flats", "subject": "Flats for {{ subscriber.attributes.city }}",
               "html": "<p>New flats</p>", "text": "New flats"})
    };
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/campaigns"),
            &t.token,
            body(&foreign),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["segment_id".to_owned()]
        ),
        "another client's segment: {}",
        r.text
    );
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/campaigns"),
            &t.token,
            body(&uuid::Uuid::now_v7().to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // GraphQL names the field too.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!, $l: UUID!, $s: UUID!) { createCampaign(clientId: $c, input: {listId: $l, segmentId: $s, name: \"x\", subject: \"x\", html: \"x\", text: \"x\"}) { id } }",
            json!({"c": client, "l": list, "s": foreign}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"],
        "segment_id"
    );

    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!, $l: UUID!, $s: UUID!) { createCampaign(clientId: $c, input: {listId: $l, segmentId: $s, name: \"Flats\", subject: \"Flats for {{ subscriber.attributes.city }}\", html: \"<p>New flats</p>\", text: \"New flats\"}) { id segmentId status } }",
            json!({"c": client, "l": list, "s": segment}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let campaign = r.body["data"]["createCampaign"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A segment a campaign still waits for cannot be deleted.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/segments/{segment}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { sendCampaign(id: $id) { status } }",
            json!({"id": campaign}),
        )
        .await;
    assert_eq!(
        r.body["data"]["sendCampaign"]["status"], "sending",
        "{}",
        r.text
    );
    let stats = wait_stats(&app, &t.token, &campaign, 2).await;
    assert_eq!(stats["total"], 2, "{stats}");
    let news: Vec<Mail> = sink
        .wait_for(3)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .filter(|m| m.subject.starts_with("Flats"))
        .collect();
    let mut to: Vec<&str> = news.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["ann@x.example.com", "dan@x.example.com"]);
    assert_eq!(news[0].subject, "Flats for msk");
    assert!(
        news[0].html.contains("background:#ff6600"),
        "{}",
        news[0].html
    );

    // The same over GraphQL, relations batched per page.
    let r = app
        .graphql(
            Some(&t.token),
            "query($c: ID!, $l: ID!) {
               campaigns(clientId: $c) { items { id total list { name } segment { name } stats { sent total status } } }
               subscribers(listId: $l, first: 50) { items { email attributes list { id } } }
               lists(clientId: $c) { items { id name } }
             }",
            json!({"c": client, "l": list}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let c = &r.body["data"]["campaigns"]["items"][0];
    assert_eq!(c["list"]["name"], "Buyers");
    assert_eq!(c["segment"]["name"], "Parents in Moscow");
    assert_eq!(
        (c["stats"]["sent"].as_i64(), c["stats"]["total"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(c["stats"]["status"], "sent");
    let subs = r.body["data"]["subscribers"]["items"].as_array().unwrap();
    assert_eq!(subs.len(), 6);
    assert!(subs.iter().all(|s| s["list"]["id"] == list.as_str()));
    assert!(
        subs.iter().any(|s| s["attributes"]["budget"] == 3500000),
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { subscriberExport(id: $id) { subscriber { email attributes } emails { kind } } }",
            json!({"id": ann}),
        )
        .await;
    assert_eq!(
        r.body["data"]["subscriberExport"]["subscriber"]["attributes"]["city"], "msk",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["data"]["subscriberExport"]["emails"][0]["kind"],
        "newsletter"
    );
    // Sent, the segment may go; the campaign then shows none.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/segments/{segment}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { campaign(id: $id) { segmentId segment { id } } }",
            json!({"id": campaign}),
        )
        .await;
    assert!(
        r.body["data"]["campaign"]["segment"].is_null(),
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { eraseSubscriber(id: $id) }",
            json!({"id": ann}),
        )
        .await;
    assert_eq!(r.body["data"]["eraseSubscriber"], true, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/subscribers/{ann}/export"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Lists, campaigns and their lifecycle over GraphQL call the same services.
async fn campaigns_are_managed_over_graphql(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let q = |query: &'static str, vars: Value| {
        let app = &app;
        let token = t.token.clone();
        async move {
            let r = app.graphql(Some(&token), query, vars).await;
            r.body
        }
    };
    let r = q(
        "mutation($c: ID!) { createList(clientId: $c, input: {name: \"News\", consentText: \"I agree\"}) { id consentVersion } }",
        json!({"c": client}),
    )
    .await;
    let list = r["data"]["createList"]["id"].as_str().unwrap().to_owned();
    let r = q(
        "mutation($id: ID!) { updateList(id: $id, input: {name: \"News\", consentText: \"I agree, again\"}) { consentVersion } }",
        json!({"id": list}),
    )
    .await;
    assert_eq!(r["data"]["updateList"]["consentVersion"], 2, "{r}");
    let r = q(
        "query($id: ID!) { list(id: $id) { name } }",
        json!({"id": list}),
    )
    .await;
    assert_eq!(r["data"]["list"]["name"], "News");
    let r = q(
        "mutation($c: ID!, $l: UUID!) { createCampaign(clientId: $c, input: {listId: $l, name: \"N\", subject: \"{{ broken\", html: \"x\", text: \"x\"}) { id } }",
        json!({"c": client, "l": list}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{r}"
    );
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"],
        "subject"
    );
    let r = q(
        "mutation($c: ID!, $l: UUID!) { createCampaign(clientId: $c, input: {listId: $l, name: \"N\", subject: \"Hello\", html: \"<p>x</p>\", text: \"x\"}) { id status } }",
        json!({"c": client, "l": list}),
    )
    .await;
    let campaign = r["data"]["createCampaign"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = q(
        "mutation($id: ID!) { testSendCampaign(id: $id, emails: [\"qa@acme.example.com\"]) { recipient kind } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(
        r["data"]["testSendCampaign"][0]["kind"], "newsletter_test",
        "{r}"
    );
    let m = parse_mail(&sink.wait_for(1).await[0]);
    assert_eq!(m.subject, "[TEST] Hello");
    let r = q(
        "mutation($id: ID!) { scheduleCampaign(id: $id, at: \"2020-01-01T00:00:00Z\") { status } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["fields"][0]["field"], "at",
        "{r}"
    );
    let r = q(
        "mutation($id: ID!) { scheduleCampaign(id: $id, at: \"2099-01-01T09:00:00Z\") { status scheduledAt } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(r["data"]["scheduleCampaign"]["status"], "scheduled", "{r}");
    let r = q(
        "mutation($id: ID!) { cancelCampaign(id: $id) { status } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(r["data"]["cancelCampaign"]["status"], "cancelled", "{r}");
    let r = q(
        "mutation($id: ID!) { sendCampaign(id: $id) { status } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "{r}");
    let r = q(
        "query($id: ID!) { campaignStats(id: $id) { status total } }",
        json!({"id": campaign}),
    )
    .await;
    assert_eq!(r["data"]["campaignStats"]["status"], "cancelled", "{r}");
    // A viewer-level API key reads but may not send.
    let key = app.api_key(&t.token, &["read"]).await;
    let r = app
        .graphql(
            Some(&key),
            "mutation($id: ID!) { sendCampaign(id: $id) { status } }",
            json!({"id": campaign}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{}",
        r.text
    );
}

both_modes!(
    subscribe_confirm_send_unsubscribe,
    a_campaign_to_a_segment_reaches_only_its_subscribers,
    campaigns_are_managed_over_graphql
);
