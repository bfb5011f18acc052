//! What the audit log costs writes on PostgreSQL (issue 13, item 4): many
//! concurrent writes through the API — a questionnaire response POST (the
//! hot ingest path), a client PATCH of one row by every connection (the
//! worst case: all wait for that row's lock) and a client PATCH of a row
//! per connection — with the audit writer on and off in the same process
//! (`service::audit::set_enabled`, the switch behind
//! `GROWTHPOINT_AUDIT=false`), in alternating rounds so that drift of the
//! machine hits both alike. Prints each round, the ratio of the median
//! rates and the median of the rounds' own changes.
//!
//! ```text
//! TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_audit [-- --requests N --rounds R [--audit on|off] [--scenario WORDS]]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

/// The production binary's allocator (api/src/main.rs): the audit row's
/// cost on the process side is mostly allocation, so measuring it under
/// another allocator measures something that does not ship.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::bench_util::{cpu_ticks, pct};
use tests::{Mode, TestApp, spawn_with};

const CONCURRENCY: usize = 32;

/// `--requests N --rounds R [--audit on|off] [--scenario WORDS]`: with
/// `--audit`, every round runs in that mode only (for a profiler; the
/// comparison needs both); with `--scenario`, only the scenarios whose
/// name contains WORDS run (e.g. `PATCH`).
fn args() -> (usize, usize, Option<bool>, Option<String>) {
    let mut it = std::env::args().skip(1);
    let (mut requests, mut rounds, mut only, mut scenario) = (2_000, 6, None, None);
    while let Some(a) = it.next() {
        let mut next = || it.next().expect("a value");
        match a.as_str() {
            "--requests" => requests = next().parse().expect("a number"),
            "--rounds" => rounds = next().parse().expect("a number"),
            "--audit" => only = Some(next() == "on"),
            "--scenario" => scenario = Some(next()),
            other => panic!("unknown argument {other}"),
        }
    }
    (requests, rounds, only, scenario)
}

/// `n` writes over [`CONCURRENCY`] connections; writes per second.
async fn run(
    app: &TestApp,
    token: &str,
    paths: &[(Method, String, serde_json::Value)],
    n: usize,
) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let http = app.http.clone();
        let token = token.to_owned();
        let ops: Vec<_> = paths
            .iter()
            .map(|(m, p, b)| (m.clone(), app.url(p), b.clone()))
            .collect();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(CONCURRENCY) {
                let (m, url, body) = &ops[i % ops.len()];
                let mut body = body.clone();
                if let Some(name) = body.get_mut("name") {
                    *name = json!(format!("Client {i}"));
                }
                let r = http
                    .request(m.clone(), url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let (requests, rounds, only, scenario) = args();
    let app = spawn_with(Mode::Postgres, |s| {
        s.run_worker = false;
        s.api_key_rate_per_second = 1_000_000;
        // The production pool, not the tests' smaller one.
        s.db_max_connections = api::configuration::Settings::default().db_max_connections;
    })
    .await;
    let t = app.signup("Bench").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Feedback", "kind": "brief", "questions": [
                {"key": "city", "type": "single_choice", "options": ["msk", "spb"]},
                {"key": "note", "type": "text"}
            ]}),
        )
        .await;
    let response = vec![(
        Method::POST,
        format!("/api/v1/questionnaires/{q}/responses"),
        json!({"answers": {"city": "msk", "note": "fine"}}),
    )];
    let update = vec![(
        Method::PATCH,
        format!("/api/v1/clients/{client}"),
        json!({"name": "x"}),
    )];
    // The same PATCH spread over one client per connection: concurrent
    // edits of different resources, as a team makes them (the single-row
    // case above is the worst case: every write waits for the row lock).
    let mut spread = Vec::new();
    for i in 0..CONCURRENCY {
        let c = app
            .create(
                "/api/v1/clients",
                &t.token,
                json!({"name": format!("Shop {i}")}),
            )
            .await;
        spread.push((
            Method::PATCH,
            format!("/api/v1/clients/{c}"),
            json!({"name": "x"}),
        ));
    }
    // Warm-up: connections, caches, the first pages of the tables.
    run(&app, &t.token, &response, 500).await;
    run(&app, &t.token, &update, 500).await;
    run(&app, &t.token, &spread, 500).await;
    for (what, ops) in [
        ("response POST", &response),
        ("client PATCH, one row", &update),
        ("client PATCH, a row per connection", &spread),
    ] {
        if scenario
            .as_ref()
            .is_some_and(|s| !what.contains(s.as_str()))
        {
            continue;
        }
        let (mut on, mut off) = (Vec::new(), Vec::new());
        // CPU per write (µs) in this process (client and server) and in
        // PostgreSQL, audit on and off.
        let (mut cpu_on, mut cpu_off) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so neither always meets a warmer
            // or a more bloated table.
            for audit in match only {
                Some(a) => [a, a],
                None if round % 2 == 0 => [true, false],
                None => [false, true],
            } {
                service::audit::set_enabled(audit);
                let (app0, pg0) = cpu_ticks();
                let rate = run(&app, &t.token, ops, requests).await;
                let (app1, pg1) = cpu_ticks();
                let per = |ticks: u64| ticks as f64 * 10_000.0 / requests as f64;
                let cpu = (per(app1.saturating_sub(app0)), per(pg1.saturating_sub(pg0)));
                println!(
                    "{what}: round {round}, audit {audit}: {rate:.0}/s, CPU per write {:.0} µs here + {:.0} µs PostgreSQL",
                    cpu.0, cpu.1
                );
                if audit {
                    on.push(rate);
                    cpu_on.push(cpu);
                } else {
                    off.push(rate);
                    cpu_off.push(cpu);
                }
            }
        }
        let median = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
            pct(&v.iter().map(pick).collect::<Vec<_>>(), 0.5)
        };
        if let Some(audit) = only {
            let (rates, cpu) = if audit {
                (&on, &cpu_on)
            } else {
                (&off, &cpu_off)
            };
            println!(
                "{what}: audit {audit} only: median {:.0}/s, CPU per write {:.0} µs here + {:.0} µs PostgreSQL",
                pct(rates, 0.5),
                median(cpu, |c| c.0),
                median(cpu, |c| c.1),
            );
            continue;
        }
        let (m_on, m_off) = (pct(&on, 0.5), pct(&off, 0.5));
        // Each round's pair ran back to back: the median of their ratios
        // is the least disturbed by the machine drifting between rounds.
        let paired: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b - 1.0).collect();
        println!(
            "{what}: median {m_off:.0}/s without the audit log, {m_on:.0}/s with it: {:+.1}%; median of the rounds' changes {:+.1}% (quartiles {:+.1}% / {:+.1}%; {CONCURRENCY} concurrent, {requests} per round, {rounds} rounds)",
            (m_on / m_off - 1.0) * 100.0,
            pct(&paired, 0.5) * 100.0,
            pct(&paired, 0.25) * 100.0,
            pct(&paired, 0.75) * 100.0,
        );
        println!(
            "{what}: median CPU per write without / with the audit log: {:.0} / {:.0} µs here, {:.0} / {:.0} µs PostgreSQL",
            median(&cpu_off, |c| c.0),
            median(&cpu_on, |c| c.0),
            median(&cpu_off, |c| c.1),
            median(&cpu_on, |c| c.1),
        );
    }
    service::audit::set_enabled(true);
    let r = app.get("/api/v1/audit-log?limit=1", &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
