//! JTBD value migration at volume on PostgreSQL (issue 3): 1,000,000
//! purchases of 100,000 customers over three years imported through the
//! API (one CSV request), labelling rules for a restaurant, then
//!
//! - `GET /clients/{id}/jtbd` (RFM, migration matrix, churn, LTV and
//!   intervals, monthly, computed on request from PostgreSQL), sequential
//!   requests each with another margin so that none is served from the
//!   report cache, median and worst; then 100 further pages of customers,
//!   which are;
//! - the same split in-process: reading the purchases (binary COPY) and the
//!   pure computation;
//! - peak memory of the process.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_jtbd [-- --rows N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::bench_util::{Lcg, ms, pct, peak_rss_mib, rows_arg};
use tests::{Mode, spawn_with};
use uuid::Uuid;

const RUNS: usize = 5;

#[tokio::main]
async fn main() {
    let rows = rows_arg("bench_jtbd");
    let app = spawn_with(Mode::Postgres, |s| {
        s.run_worker = false;
    })
    .await;
    let t = app.signup("Bench").await;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Restaurant", "timezone": "Europe/Moscow"}),
        )
        .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/jtbd-rules"),
            Some(&t.token),
            Some(json!({"rules": [
                {"label": "business_lunch", "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}},
                {"label": "family_dinner", "party_size": {"min": 3}},
                {"label": "date", "party_size": {"min": 2, "max": 2}, "hours": {"from": 18, "to": 23}}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The data shape of `analytics/examples/bench.rs`.
    let mut rng = Lcg(7);
    let base = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00+03:00").unwrap();
    let mut csv = String::with_capacity(rows * 70);
    csv.push_str("external_id,customer_ref,purchased_at,amount,items,party_size,channel\n");
    for i in 0..rows as u64 {
        let at = base + chrono::Duration::minutes(rng.below(3 * 365 * 24 * 60) as i64);
        csv.push_str(&format!(
            "p{i},c{},{},{},{},{},{}\n",
            rng.below(100_000),
            at.to_rfc3339(),
            300 + rng.below(5_000),
            1 + rng.below(6),
            1 + rng.below(5),
            if i % 3 == 0 { "delivery" } else { "hall" }
        ));
    }
    let started = Instant::now();
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{client}/purchases/import"),
            Some(&t.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let import_s = started.elapsed().as_secs_f64();
    println!(
        "import of {rows} purchases (one CSV request): {import_s:.1} s ({:.0}/s)",
        rows as f64 / import_s
    );

    // Each cold request asks for another margin, so the report cache
    // (keyed by data version, rules and parameters) has nothing for it.
    let path = |run: usize, after: Option<&str>| {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        format!(
            "/api/v1/clients/{client}/jtbd?as_of=2026-12-31&period=month&margin=0.{}&limit=10{after}",
            30 + run
        )
    };
    let mut api = Vec::new();
    let mut next = None;
    for run in 0..RUNS {
        let started = Instant::now();
        let r = app.get(&path(run, None), &t.token).await;
        api.push(ms(started.elapsed()));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            r.body["purchases"].as_u64(),
            Some(rows as u64),
            "{}",
            r.text
        );
        next = r.body["next_customer"].as_str().map(str::to_owned);
    }
    println!(
        "GET /clients/{{id}}/jtbd over {rows} purchases, computed: median {:.0} ms, worst {:.0} ms ({RUNS} sequential requests)",
        pct(&api, 0.5),
        pct(&api, 1.0)
    );
    // The next pages of the last report come from the cache.
    let mut pages = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let r = app.get(&path(RUNS - 1, next.as_deref()), &t.token).await;
        pages.push(ms(started.elapsed()));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        next = r.body["next_customer"].as_str().map(str::to_owned);
    }
    println!(
        "  the next 100 pages of customers (cached report): p50 {:.1} ms, p99 {:.1} ms",
        pct(&pages, 0.5),
        pct(&pages, 0.99)
    );

    // Where the time goes, in-process.
    let agency = Uuid::parse_str(&t.agency_id).unwrap();
    let client = Uuid::parse_str(&client).unwrap();
    let tz: chrono_tz::Tz = "Europe/Moscow".parse().unwrap();
    let cut = Some(
        chrono::DateTime::parse_from_rfc3339("2027-01-02T00:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let mut load = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let p = app
            .services
            .purchases_before(agency, client, cut, tz)
            .await
            .unwrap();
        load.push(ms(started.elapsed()));
        assert_eq!(p.len(), rows);
    }
    println!(
        "  of which reading the purchases from PostgreSQL (binary COPY): median {:.0} ms",
        pct(&load, 0.5)
    );
    println!("peak memory (VmHWM) {:.0} MiB", peak_rss_mib());
}
