//! Engagement tracking of campaign emails end to end: the open pixel and
//! click-through links in the sent HTML, unique opens and clicks in the
//! stats (REST and GraphQL), redirects only to the links the email held,
//! and clients that switched tracking off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use entity::email_event;
use reqwest::{Method, StatusCode};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;
use tests::{Mail, Mode, TestApp, both_modes, parse_mail, spawn_app, url_encode};
use uuid::Uuid;

const SALE: &str = "https://shop.example.com/sale?a=1&b=2";
const BLOG: &str = "https://shop.example.com/blog";
/// Characters a query string treats specially, which must come back as is.
const SEARCH: &str = "https://shop.example.com/search?q=a+b%20c&x=%C3%BC#top";

/// Three web links (one with an escaped `&`, one single-quoted, one bare
/// with `+`, `%20` and a fragment), a `mailto:` and an anchor.
const HTML: &str = "<p>Hi {{ subscriber.name }}! <a href=\"https://shop.example.com/sale?a=1&amp;b=2\">Sale</a> \
     <a class='x' href='https://shop.example.com/blog'>Blog</a> \
     <a href=https://shop.example.com/search?q=a+b%20c&amp;x=%C3%BC#top>Search</a> \
     <a href=\"mailto:info@shop.example.com\">Write</a> <a href=\"#top\">Top</a></p>";

/// What a browser does with an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The API paths (`/api/v1/public/t/{o|c}/…`) of a kind in the HTML, in order.
fn tracked_paths(html: &str, kind: char) -> Vec<String> {
    let html = unescape(html);
    let needle = format!("/api/v1/public/t/{kind}/");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i..];
            let end = rest.find(['"', '\'', '<', '>', ' ']).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

/// The `u` and `s` of a click path, decoded.
fn query_of(path: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x{path}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Hit {
    status: StatusCode,
    location: Option<String>,
    content_type: String,
    cache_control: String,
    body: Vec<u8>,
}

async fn hit(app: &TestApp, path: &str) -> Hit {
    let r = no_redirects()
        .get(app.url(path))
        .header("User-Agent", "TestMail/1.0")
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Hit {
        status: r.status(),
        location: header("location"),
        content_type: header("content-type").unwrap_or_default(),
        cache_control: header("cache-control").unwrap_or_default(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// The campaign's emails, by recipient.
async fn sent_mails(app: &TestApp, n: usize) -> HashMap<String, Mail> {
    tests::wait_for_files(&app.settings.outbox_dir(), n)
        .await
        .iter()
        .map(|raw| parse_mail(raw))
        .filter(|m| m.subject.starts_with("News for"))
        .map(|m| (m.to.clone(), m))
        .collect()
}

async fn events(app: &TestApp) -> u64 {
    email_event::Entity::find()
        .count(&app.services.db)
        .await
        .unwrap()
}

fn assert_gif(h: &Hit) {
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.content_type, "image/gif");
    assert!(h.cache_control.contains("no-store"), "{}", h.cache_control);
    assert!(h.body.starts_with(b"GIF89a"));
}

fn assert_refused(h: &Hit, what: &str) {
    assert_eq!(h.status, StatusCode::NOT_FOUND, "{what}");
    assert_eq!(h.location, None, "{what} redirected");
    let body: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(body["code"], "not_found", "{what}");
}

async fn opens_and_clicks_count_unique_recipients(mode: Mode) {
    // Arrange: two subscribers get a campaign with two links.
    let app = spawn_app(mode).await;
    let nl = tests::newsletter(&app, 2, HTML).await;
    nl.send(&app).await;
    nl.wait_all_sent(&app, 2, 60, |_| {}).await;
    let mails = sent_mails(&app, 2).await;
    let (a, b) = (&mails["r0000@example.com"], &mails["r0001@example.com"]);

    // The HTML: links wrapped, one pixel, the rest as written.
    for m in [a, b] {
        let html = unescape(&m.html);
        assert_eq!(tracked_paths(&m.html, 'o').len(), 1, "{html}");
        let clicks = tracked_paths(&m.html, 'c');
        let targets: Vec<String> = clicks.iter().map(|p| query_of(p)["u"].clone()).collect();
        assert_eq!(targets, [SALE, BLOG, SEARCH], "{html}");
        assert!(!html.contains("href=\"https://shop.example.com"), "{html}");
        assert!(html.contains("<a href=\"mailto:info@shop.example.com\">Write</a>"));
        assert!(html.contains("<a href=\"#top\">Top</a>"));
        assert!(html.contains("/api/v1/public/unsubscribe?token="), "{html}");
        assert!(
            !m.text.contains("/api/v1/public/t/"),
            "text part: {}",
            m.text
        );
    }
    let before = nl.stats(&app).await;
    assert_eq!(
        (&before["unique_opens"], &before["unique_clicks"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(
        (&before["open_rate"], &before["click_rate"]),
        (&json!(0.0), &json!(0.0))
    );

    // Act: A's pixel twice, B's once.
    let a_pixel = &tracked_paths(&a.html, 'o')[0];
    let b_pixel = &tracked_paths(&b.html, 'o')[0];
    for p in [a_pixel, a_pixel, b_pixel] {
        assert_gif(&hit(&app, p).await);
    }
    let s = nl.stats(&app).await;
    assert_eq!(
        (&s["unique_opens"], &s["unique_clicks"], &s["open_rate"]),
        (&json!(2), &json!(0), &json!(1.0))
    );

    // A clicks the sale link twice: to exactly the URL the email had.
    let a_sale = &tracked_paths(&a.html, 'c')[0];
    for _ in 0..2 {
        let h = hit(&app, a_sale).await;
        assert_eq!(h.status, StatusCode::FOUND);
        assert_eq!(h.location.as_deref(), Some(SALE));
        assert!(h.cache_control.contains("no-store"));
    }
    let h = hit(&app, &tracked_paths(&a.html, 'c')[2]).await;
    assert_eq!(
        (h.status, h.location.as_deref()),
        (StatusCode::FOUND, Some(SEARCH))
    );
    let s = nl.stats(&app).await;
    assert_eq!(s["sent"], 2);
    assert_eq!(
        (&s["unique_opens"], &s["unique_clicks"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        (&s["open_rate"], &s["click_rate"]),
        (&json!(1.0), &json!(0.5))
    );
    // Every hit is in the log: three opens, three clicks.
    assert_eq!(events(&app).await, 6);
    let links = app
        .get(
            &format!("/api/v1/campaigns/{}/links", nl.campaign),
            &nl.owner.token,
        )
        .await;
    assert_eq!(links.status, StatusCode::OK, "{}", links.text);
    assert_eq!(
        links.body,
        json!([
            {"url": SALE, "clicks": 2, "unique_clicks": 1},
            {"url": SEARCH, "clicks": 1, "unique_clicks": 1},
        ])
    );

    // Links the email did not hold lead nowhere.
    let token_of = |p: &str| {
        p.trim_start_matches("/api/v1/public/t/c/")
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    };
    let (a_token, b_token) = (token_of(a_sale), token_of(&tracked_paths(&b.html, 'c')[0]));
    let a_sig = query_of(a_sale)["s"].clone();
    let evil = "https://evil.example.com/";
    for (what, path) in [
        (
            "another URL with the old MAC",
            format!(
                "/api/v1/public/t/c/{a_token}?u={}&s={a_sig}",
                url_encode(evil)
            ),
        ),
        (
            "the blog URL with the sale MAC",
            format!(
                "/api/v1/public/t/c/{a_token}?u={}&s={a_sig}",
                url_encode(BLOG)
            ),
        ),
        (
            "A's MAC on B's token",
            format!(
                "/api/v1/public/t/c/{b_token}?u={}&s={a_sig}",
                url_encode(SALE)
            ),
        ),
        (
            "no MAC",
            format!("/api/v1/public/t/c/{a_token}?u={}", url_encode(SALE)),
        ),
        (
            "an empty MAC",
            format!("/api/v1/public/t/c/{a_token}?u={}&s=", url_encode(SALE)),
        ),
        ("no URL", format!("/api/v1/public/t/c/{a_token}?s={a_sig}")),
        (
            "a garbage token",
            format!(
                "/api/v1/public/t/c/garbage?u={}&s={a_sig}",
                url_encode(SALE)
            ),
        ),
        (
            "the open token as a click token",
            format!(
                "/api/v1/public/t/c/{}?u={}&s={a_sig}",
                a_pixel.trim_start_matches("/api/v1/public/t/o/"),
                url_encode(SALE)
            ),
        ),
    ] {
        assert_refused(&hit(&app, &path).await, what);
    }
    // A forged pixel still shows an image, and records nothing.
    for p in [
        "/api/v1/public/t/o/garbage".to_owned(),
        format!("/api/v1/public/t/o/{a_token}"),
    ] {
        assert_gif(&hit(&app, &p).await);
    }
    assert_eq!(events(&app).await, 6);

    // The GraphQL twin agrees.
    let r = app
        .graphql(
            Some(&nl.owner.token),
            "query($id: ID!) { campaignStats(id: $id) { uniqueOpens uniqueClicks openRate clickRate } \
             campaignLinks(id: $id) { url uniqueClicks } }",
            json!({"id": nl.campaign}),
        )
        .await;
    assert_eq!(
        r.body["data"]["campaignStats"],
        json!({"uniqueOpens": 2, "uniqueClicks": 1, "openRate": 1.0, "clickRate": 0.5}),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["data"]["campaignLinks"],
        json!([{"url": SALE, "uniqueClicks": 1}, {"url": SEARCH, "uniqueClicks": 1}])
    );

    // Scoring can read who did what last.
    let agency: Uuid = nl.owner.agency_id.parse().unwrap();
    let client: Uuid = nl.client.parse().unwrap();
    let last = service::mail::tracking::last_events(&app.services.db, agency, client, None)
        .await
        .unwrap();
    assert_eq!(last.len(), 2);
    let (la, lb) = (&last["r0000@example.com"], &last["r0001@example.com"]);
    assert!(la.opened.is_some() && la.clicked.is_some(), "{la:?}");
    assert!(la.clicked >= la.opened);
    assert!(lb.opened.is_some() && lb.clicked.is_none(), "{lb:?}");
    // Another client of the agency has none of them.
    assert!(
        service::mail::tracking::last_events(&app.services.db, agency, Uuid::now_v7(), None)
            .await
            .unwrap()
            .is_empty()
    );

    // Switched off later: links still lead where they did, nothing is recorded.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{}", nl.client),
            Some(&nl.owner.token),
            Some(json!({"track_engagement": false})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["track_engagement"]),
        (StatusCode::OK, &json!(false))
    );
    assert_gif(&hit(&app, b_pixel).await);
    assert_eq!(hit(&app, a_sale).await.location.as_deref(), Some(SALE));
    assert_eq!(events(&app).await, 6);

    // Erasing A takes A's events with it; B's stay.
    let subs = app
        .get(
            &format!("/api/v1/lists/{}/subscribers", nl.list),
            &nl.owner.token,
        )
        .await;
    let a_id = subs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "r0000@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/subscribers/{a_id}"),
            Some(&nl.owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(events(&app).await, 1);
    let last = service::mail::tracking::last_events(&app.services.db, agency, client, None)
        .await
        .unwrap();
    assert_eq!(last.keys().collect::<Vec<_>>(), ["r0001@example.com"]);
    let s = nl.stats(&app).await;
    assert_eq!(
        (&s["unique_opens"], &s["unique_clicks"]),
        (&json!(1), &json!(0))
    );
}

async fn clients_that_do_not_track_get_the_links_as_written(mode: Mode) {
    let app = spawn_app(mode).await;
    let nl = tests::newsletter(&app, 1, HTML).await;
    let path = format!("/api/v1/clients/{}", nl.client);
    // On by default.
    assert_eq!(
        app.get(&path, &nl.owner.token).await.body["track_engagement"],
        true
    );
    // Bad input is refused and names the field.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&nl.owner.token),
            Some(json!({"track_engagement": "no"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["track_engagement"]);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&nl.owner.token),
            Some(json!({"track_engagement": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    nl.send(&app).await;
    nl.wait_all_sent(&app, 1, 60, |_| {}).await;
    let mails = sent_mails(&app, 1).await;
    let m = &mails["r0000@example.com"];
    let html = unescape(&m.html);
    assert!(!html.contains("/api/v1/public/t/"), "{html}");
    assert!(
        m.html
            .contains("<a href=\"https://shop.example.com/sale?a=1&amp;b=2\">Sale</a>"),
        "{}",
        m.html
    );
    assert!(
        m.html
            .contains("<a class='x' href='https://shop.example.com/blog'>Blog</a>")
    );
    let s = nl.stats(&app).await;
    assert_eq!(
        (&s["unique_opens"], &s["open_rate"], &s["click_rate"]),
        (&json!(0), &json!(0.0), &json!(0.0))
    );

    // A client created through GraphQL without tracking says so.
    let r = app
        .graphql(
            Some(&nl.owner.token),
            "mutation { createClient(input: {name: \"Quiet\", trackEngagement: false}) { trackEngagement } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.body["data"]["createClient"]["trackEngagement"], false,
        "{}",
        r.text
    );
}

async fn a_test_send_has_working_links_but_counts_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let nl = tests::newsletter(&app, 1, HTML).await;
    let r = app
        .post(
            &format!("/api/v1/campaigns/{}/test", nl.campaign),
            &nl.owner.token,
            json!({"emails": ["qa@example.com"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let files = tests::wait_for_files(&app.settings.outbox_dir(), 1).await;
    let m = parse_mail(&files[0]);
    assert!(m.subject.starts_with("[TEST]"), "{}", m.subject);
    // What subscribers will get: wrapped links and a pixel…
    let clicks = tracked_paths(&m.html, 'c');
    assert_eq!(clicks.len(), 3, "{}", m.html);
    assert_gif(&hit(&app, &tracked_paths(&m.html, 'o')[0]).await);
    assert_eq!(hit(&app, &clicks[1]).await.location.as_deref(), Some(BLOG));
    // …but the tester's hits are nobody's engagement.
    assert_eq!(events(&app).await, 0);
    let s = nl.stats(&app).await;
    assert_eq!(
        (&s["unique_opens"], &s["unique_clicks"]),
        (&json!(0), &json!(0))
    );
}

async fn clients_from_before_tracking_track_by_default(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Old"}))
        .await;
    // The schema as it was before tracking, then the migrations again.
    tests::rerun_migrations_from(&app.services.db, "_000019_create_email_events").await;
    let r = app
        .get(&format!("/api/v1/clients/{client}"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["track_engagement"], true);
    assert_eq!(events(&app).await, 0);
}

async fn stats_rates_are_null_before_anything_is_sent(mode: Mode) {
    let app = spawn_app(mode).await;
    let nl = tests::newsletter(&app, 1, HTML).await;
    let s = nl.stats(&app).await;
    assert_eq!(s["sent"], 0);
    assert_eq!(
        (
            &s["unique_opens"],
            &s["unique_clicks"],
            &s["open_rate"],
            &s["click_rate"]
        ),
        (&json!(0), &json!(0), &json!(null), &json!(null))
    );
}

both_modes!(
    opens_and_clicks_count_unique_recipients,
    clients_that_do_not_track_get_the_links_as_written,
    a_test_send_has_working_links_but_counts_nothing,
    clients_from_before_tracking_track_by_default,
    stats_rates_are_null_before_anything_is_sent,
);
