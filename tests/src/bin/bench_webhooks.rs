//! Webhook fan-out throughput (issue 13, item 3): N events of one agency
//! written to the ledger (one delivery each, to one endpoint), then sent by
//! the worker's delivery loop to a receiver on loopback that checks every
//! signature, until all are recorded `delivered`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-wh cargo run --release -p tests --bin bench_webhooks [-- --mode sqlite|postgres] [--n N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use serde_json::json;
use tests::webhook_sink::WebhookSink;
use tests::{Mode, spawn_with};

#[tokio::main]
async fn main() {
    let mut mode = Mode::Postgres;
    let mut n = 10_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mode" => {
                mode = match it.next().as_deref() {
                    Some("sqlite") => Mode::Sqlite,
                    Some("postgres") => Mode::Postgres,
                    other => panic!("--mode sqlite|postgres, not {other:?}"),
                }
            }
            "--n" => n = it.next().and_then(|v| v.parse().ok()).expect("--n N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let sink = WebhookSink::start().await;
    let app = spawn_with(mode, |s| {
        s.webhooks_allow_private = true;
        s.run_worker = false;
        s.db_max_connections = 32;
    })
    .await;
    let t = app.signup("Bench").await;
    let r = app
        .post("/api/v1/webhooks", &t.token, json!({"url": sink.url()}))
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    sink.trust(r.body["secret"].as_str().unwrap());
    let agency = uuid::Uuid::parse_str(&t.agency_id).unwrap();
    let services = &app.services;

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let txn = service::db::begin_write(&services.db).await.unwrap();
        for i in chunk {
            service::webhooks::emit(
                &txn,
                agency,
                service::webhooks::JOB_FAILED,
                json!({"kind": "bench", "n": i}),
            )
            .await
            .unwrap();
        }
        txn.commit().await.unwrap();
    }
    let queued = started.elapsed();

    let started = Instant::now();
    let delivered = services.deliver_webhooks("bench").await.unwrap();
    let sent = started.elapsed();
    let got = sink.accepted_by_id();
    let bad = sink
        .received()
        .iter()
        .filter(|r| r.signed_by != vec![0])
        .count();
    assert_eq!(delivered, n);
    assert_eq!(got.len(), n);
    assert_eq!(bad, 0, "signatures that did not verify");
    let mode = match mode {
        Mode::Sqlite => "SQLite",
        Mode::Postgres => "PostgreSQL",
    };
    println!(
        "{mode}: {n} events written to the ledger in {queued:.2?} ({:.0}/s)",
        n as f64 / queued.as_secs_f64()
    );
    println!(
        "{mode}: {n} deliveries signed, sent, verified and recorded in {sent:.2?}: {:.0} deliveries/s",
        n as f64 / sent.as_secs_f64()
    );
}
