//! The recompute ledger under faults: failures are retried with backoff and
//! end visible as failed; wake-ups lost by the queue are re-armed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use tests::{Mode, TestApp, both_modes, panel, spawn_with};

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_failing_recompute_is_retried_then_shown_as_failed(mode: Mode) {
    let app = spawn_with(mode, |_| {}).await;
    let t = app.signup("Acme").await;
    let agency: uuid::Uuid = t.agency_id.parse().unwrap();
    // A target whose computation always fails (no such kind).
    tests::failing_recompute(&app.services.db, agency).await;
    wait_until("the run to be given up", || async {
        let r = app.get("/api/v1/jobs?status=failed", &t.token).await;
        r.body["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let failed = app.get("/api/v1/jobs?status=failed", &t.token).await;
    let run = &failed.body["items"][0];
    assert_eq!(run["attempt"], 5);
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("unknown recompute kind"),
        "{run}"
    );
    let retries = app.get("/api/v1/jobs?status=retrying", &t.token).await;
    let retries = retries.body["items"].as_array().unwrap();
    assert_eq!(retries.len(), 4, "attempts 1–4 were retried");
    // Each retry waited at least its backoff (20 ms · 2^n) after the last.
    let times: Vec<chrono::DateTime<chrono::Utc>> = retries
        .iter()
        .chain(std::iter::once(run))
        .map(|r| r["started_at"].as_str().unwrap().parse().unwrap())
        .collect();
    for (i, w) in times.windows(2).enumerate() {
        let gap = (w[1] - w[0]).num_milliseconds();
        assert!(gap >= 20 << (i + 1), "retry {} came after {gap} ms", i + 1);
    }
    // Given up: no more runs appear.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = app.get("/api/v1/jobs", &t.token).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
}

async fn drop_queue(app: &TestApp) {
    match app.mode {
        Mode::Postgres => {
            let client = redis::Client::open(tests::redis_url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", app.settings.queue_name))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(!keys.is_empty(), "the push reached Redis");
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        Mode::Sqlite => {
            let q = Database::connect(app.settings.queue_url()).await.unwrap();
            let n = q.execute_unprepared("DELETE FROM Jobs").await.unwrap();
            assert!(n.rows_affected() > 0, "the push reached the queue");
        }
    }
}

async fn wakeups_lost_by_the_queue_are_rearmed(mode: Mode) {
    // No worker while the data arrives; then the queue loses its messages
    // (a Redis restart without persistence, or a crash before the push).
    let app = spawn_with(mode, |s| s.run_worker = false).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/questionnaires/{}/responses/import",
                p.questionnaire
            ),
            Some(&t.token),
            "application/x-ndjson",
            tests::ndjson_rows("x", 50),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    drop_queue(&app).await;
    let s = app
        .get(
            &format!("/api/v1/questionnaires/{}/summary", p.questionnaire),
            &t.token,
        )
        .await;
    assert_eq!(s.body["status"], "pending");
    let services = api::startup::connect(&app.settings).await.unwrap();
    let _worker = api::startup::start_worker(services, &app.settings);
    let s = app.wait_for_summary(&t.token, &p.questionnaire, 1).await;
    assert_eq!(s["summary"]["n"], 50);
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{}/responses", p.questionnaire),
            &t.token,
            json!({"answers": {"city": "msk"}}),
        )
        .await;
    assert_eq!(r.body["data_version"], 2);
    app.wait_for_summary(&t.token, &p.questionnaire, 2).await;
}

both_modes!(
    a_failing_recompute_is_retried_then_shown_as_failed,
    wakeups_lost_by_the_queue_are_rearmed,
);
