//! Retention: the worker deletes audit rows and finished webhook deliveries
//! older than their configured days (and events no waiting delivery needs),
//! keeps everything younger, and never deletes a delivery that still waits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::{Value, json};
use service::infra::retention::{Purged, v7_floor};
use tests::webhook_sink::WebhookSink;
use tests::{Mode, Tenant, TestApp, both_modes, spawn_with};

async fn log_of(app: &TestApp, t: &Tenant, ep: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/webhooks/{ep}/deliveries"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

async fn ping(app: &TestApp, t: &Tenant, ep: &str) {
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn rows_past_retention_go_and_the_rest_stays(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = spawn_with(mode, |s| {
        s.webhooks_allow_private = true;
        // A failed delivery waits a minute: it is still waiting when purged.
        s.webhook_retry_base_ms = 60_000;
        s.audit_retention_days = 1;
        s.webhook_retention_days = 1;
        s.retention_interval_ms = 100;
    })
    .await;
    let t = app.signup("Keeper").await;
    let r = app
        .post("/api/v1/webhooks", &t.token, json!({"url": sink.url()}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let live = r.body["endpoint"]["id"].as_str().unwrap().to_owned();
    sink.trust(r.body["secret"].as_str().unwrap());
    // Nothing listens on port 9 of loopback.
    let r = app
        .post(
            "/api/v1/webhooks",
            &t.token,
            json!({"url": "http://127.0.0.1:9/in"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dead = r.body["endpoint"]["id"].as_str().unwrap().to_owned();
    ping(&app, &t, &live).await;
    ping(&app, &t, &dead).await;
    sink.wait_accepted(1, 60).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let live_log = log_of(&app, &t, &live).await;
        let dead_log = log_of(&app, &t, &dead).await;
        if live_log.first().is_some_and(|d| d["status"] == "delivered")
            && dead_log.first().is_some_and(|d| d["status"] == "retrying")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{live_log:?} {dead_log:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The sweeper: an audit row of three days ago goes, today's stay. A
    // second agency's rows are purged too (the sweep walks agencies: the
    // log is keyed by agency).
    app.signup("Other").await;
    let db = &app.services.db;
    let today = entity::audit_log::Entity::find().count(db).await.unwrap();
    assert!(today > 0);
    let old_at = Utc::now() - Duration::days(3);
    let old = v7_floor(old_at);
    entity::audit_log::ActiveModel {
        id: Set(old),
        agency_id: Set(t.agency_id.parse().unwrap()),
        at: Set(old_at),
        actor_kind: Set("system".into()),
        user_id: Set(None),
        api_key_id: Set(None),
        request_id: Set(None),
        action: Set("update".into()),
        resource_type: Set("client".into()),
        resource_id: Set(None),
        changes: Set(json!({})),
    }
    .insert(db)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while entity::audit_log::Entity::find_by_id(old)
        .one(db)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        entity::audit_log::Entity::find().count(db).await.unwrap(),
        today
    );

    // Half a day on, nothing is old enough.
    let purged = app
        .services
        .purge_expired(Utc::now() + Duration::hours(12))
        .await
        .unwrap();
    assert_eq!(purged, Purged::default());
    assert_eq!(log_of(&app, &t, &live).await.len(), 1);

    // Three days on: every audit row and the delivered ping go, with its
    // event; the waiting delivery and its event stay.
    let purged = app
        .services
        .purge_expired(Utc::now() + Duration::days(3))
        .await
        .unwrap();
    assert_eq!(purged.audit_rows, today);
    assert_eq!(purged.webhook_deliveries, 1);
    assert_eq!(purged.webhook_events, 1);
    assert!(log_of(&app, &t, &live).await.is_empty());
    let dead_log = log_of(&app, &t, &dead).await;
    assert_eq!(dead_log.len(), 1, "{dead_log:?}");
    assert_eq!(dead_log[0]["status"], "retrying");
    assert_eq!(
        entity::webhook_event::Entity::find()
            .count(db)
            .await
            .unwrap(),
        1
    );
    // The purge itself is not a write anyone audits.
    assert_eq!(
        entity::audit_log::Entity::find().count(db).await.unwrap(),
        0
    );
}

both_modes!(rows_past_retention_go_and_the_rest_stays);
