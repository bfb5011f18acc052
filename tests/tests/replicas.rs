//! Two API processes on one PostgreSQL database: reads they cache (client
//! lists, memberships, API keys) follow a write made on the other at once,
//! through `LISTEN`/`NOTIFY`, not after a time-out. Both caches are set to
//! ten minutes here, so only the invalidation messages can explain fresh
//! answers. On SQLite (one process) a write is seen by the next read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{Mode, TestApp, both_modes, spawn_with};

const LONG: u64 = 600_000;

async fn long_caches(mode: Mode) -> TestApp {
    spawn_with(mode, |s| {
        s.read_cache_ms = LONG;
        s.auth_cache_ms = LONG;
    })
    .await
}

async fn wait_live(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.services.client_cache.is_live() {
        assert!(
            Instant::now() < deadline,
            "the invalidation feed subscribes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `probe` on `app` until `ok` holds (a message crosses processes in
/// milliseconds; the deadline only stops a broken build from hanging).
async fn eventually(
    app: &TestApp,
    path: &str,
    token: &str,
    ok: impl Fn(&StatusCode, &Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.get(path, token).await;
        if ok(&r.status, &r.body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} on the other replica still answers {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn writes_on_one_replica_are_seen_by_the_other_at_once() {
    let a = long_caches(Mode::Postgres).await;
    let b = a.replica().await;
    wait_live(&a).await;
    wait_live(&b).await;
    let t = a.signup("Acme").await;
    let id = a
        .create("/api/v1/clients", &t.token, json!({"name": "First"}))
        .await;
    eventually(&b, "/api/v1/clients", &t.token, |s, b| {
        *s == StatusCode::OK && names(b) == ["First"]
    })
    .await;

    // B may have read the list before the create's message reached it; once
    // the message is in, the next read fills B's cache for good.
    let agency = t.agency_id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.services.client_cache.was_invalidated(agency) {
        assert!(Instant::now() < deadline, "the create's message reaches B");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = b.get("/api/v1/clients", &t.token).await;
    assert_eq!(names(&r.body), ["First"]);
    // B serves the list from memory: a change that bypasses the service
    // layer (and so publishes nothing) is not seen there…
    a.services
        .db
        .execute_unprepared(&format!(
            "UPDATE clients SET name = 'Edited behind its back' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    let r = b.get("/api/v1/clients", &t.token).await;
    assert_eq!(names(&r.body), ["First"], "B answers from its cache");
    // …while a write through A reaches B's cache.
    let r = a
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{id}"),
            Some(&t.token),
            Some(json!({"name": "Renamed on A"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually(&b, "/api/v1/clients", &t.token, |_, b| {
        names(b) == ["Renamed on A"]
    })
    .await;
    let r = a
        .call(
            Method::POST,
            &format!("/api/v1/clients/{id}/archive"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    eventually(&b, "/api/v1/clients", &t.token, |_, b| names(b).is_empty()).await;
    eventually(
        &b,
        "/api/v1/clients?include_archived=true",
        &t.token,
        |_, b| names(b) == ["Renamed on A"],
    )
    .await;

    // A revoked API key stops working on B.
    let key = a.api_key(&t.token, &["read"]).await;
    assert_eq!(b.get("/api/v1/clients", &key).await.status, StatusCode::OK);
    let keys = a.get("/api/v1/api-keys", &t.token).await;
    let key_id = keys.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = a
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    eventually(&b, "/api/v1/clients", &key, |s, _| {
        *s == StatusCode::UNAUTHORIZED
    })
    .await;

    // A removed member is locked out of B; a changed role applies there.
    let r = a
        .post(
            "/api/v1/members",
            &t.token,
            json!({"email": "analyst@acme.example.com", "role": "analyst"}),
        )
        .await;
    let invite = r.body["invitation_token"].as_str().unwrap().to_owned();
    let r = a
        .call(
            Method::POST,
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": invite, "name": "Ann", "password": "a long enough password"})),
        )
        .await;
    let analyst = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        b.get("/api/v1/clients", &analyst).await.status,
        StatusCode::OK
    );
    let members = a.get("/api/v1/members", &t.token).await;
    let membership = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "analyst")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = a
        .call(
            Method::DELETE,
            &format!("/api/v1/members/{membership}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    eventually(&b, "/api/v1/clients", &analyst, |s, _| {
        *s == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
async fn postgres_writes_on_one_replica_are_seen_by_the_other_at_once() {
    writes_on_one_replica_are_seen_by_the_other_at_once().await
}

/// One process: the cached list follows every write at once, and pages are
/// cut from it like from the database.
async fn the_cached_list_follows_every_write(mode: Mode) {
    let app = long_caches(mode).await;
    wait_live(&app).await;
    let t = app.signup("Acme").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.create(
                "/api/v1/clients",
                &t.token,
                json!({"name": format!("C{i}")}),
            )
            .await,
        );
        let r = app.get("/api/v1/clients", &t.token).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), i + 1);
    }
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{}/archive", ids[1]),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get("/api/v1/clients?limit=2", &t.token).await;
    assert_eq!(names(&r.body), ["C0", "C2"]);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/v1/clients?limit=2&after={cursor}"), &t.token)
        .await;
    assert_eq!(names(&r.body), ["C3", "C4"]);
    assert!(r.body["next_cursor"].is_null(), "{}", r.text);
    let r = app
        .get("/api/v1/clients?include_archived=true", &t.token)
        .await;
    assert_eq!(names(&r.body), ["C0", "C1", "C2", "C3", "C4"]);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{}", ids[4]),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get("/api/v1/clients", &t.token).await;
    assert_eq!(names(&r.body), ["C0", "C2", "C3"]);
    // Another agency's list is its own.
    let other = app.signup("Other").await;
    let r = app.get("/api/v1/clients", &other.token).await;
    assert!(names(&r.body).is_empty());
}

both_modes!(the_cached_list_follows_every_write);
