//! The barrier analysis at volume on PostgreSQL (issue 14, item 2):
//! 1,000,000 responses (60 % in a `non_buyer` questionnaire, 40 % in a
//! `customer_panel` asking the same barrier questions) imported through the
//! API, then `GET /clients/{id}/barriers` sequentially, p50/p99:
//!
//! - the first read of a process (both questionnaires loaded into the
//!   panel cache by COPY);
//! - the whole client (read off the cached aggregates);
//! - a saved segment (its filter selects and folds the barrier columns);
//! - one CJM stage;
//! - the whole client right after one new response (brought up to the new
//!   data version first).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-barriers cargo run -p tests --bin bench_barriers [-- --rows N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::bench_util::{Lcg, ms, pct, rows_arg};
use tests::{Mode, spawn_with};

const BARRIERS: [&str; 8] = [
    "price", "location", "trust", "timing", "mortgage", "layout", "parking", "delays",
];
const STOPPERS: [&str; 4] = ["paperwork", "manager", "deposit", "nothing"];
const WORDS: [&str; 4] = ["Too expensive", "too expensive!", "Far away", "No parking"];

fn answers(rng: &mut Lcg, non_buyer: bool) -> Value {
    let mut a = serde_json::Map::new();
    a.insert("city".into(), json!(format!("c{}", rng.below(8))));
    let chosen: Vec<&str> = BARRIERS
        .iter()
        .enumerate()
        .filter(|(i, _)| rng.below(100) < if non_buyer { 40 - 4 * *i as u64 } else { 12 })
        .map(|(_, b)| *b)
        .collect();
    a.insert("why_not".into(), json!(chosen));
    if non_buyer {
        a.insert(
            "deal_stopper".into(),
            json!(STOPPERS[rng.below(4) as usize]),
        );
        if rng.below(10) == 0 {
            a.insert("in_words".into(), json!(WORDS[rng.below(4) as usize]));
        }
    } else {
        a.insert("nps".into(), json!(rng.below(11)));
    }
    Value::Object(a)
}

#[tokio::main]
async fn main() {
    let rows = rows_arg("bench_barriers");
    let app = spawn_with(Mode::Postgres, |s| {
        s.run_worker = false;
        s.db_max_connections = 8;
    })
    .await;
    let t = app.signup("Bench").await;
    let lib = app.clone_template(&t.token).await;
    let stage = |k: usize| lib["stages"][k]["id"].as_str().unwrap().to_owned();
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Developer", "touchpoint_library_id": lib["id"]}),
        )
        .await;
    let cities: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let city = json!({"key": "city", "type": "single_choice", "role": "segment_attribute", "options": cities});
    let why_not = json!({"key": "why_not", "type": "multi_choice", "role": "barrier", "options": BARRIERS, "stage_id": stage(1)});
    let non_buyer = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Non-buyers", "kind": "non_buyer", "questions": [
                city, why_not,
                {"key": "deal_stopper", "type": "single_choice", "role": "barrier", "options": STOPPERS, "stage_id": stage(2)},
                {"key": "in_words", "type": "text", "role": "barrier", "stage_id": stage(1)}
            ]}),
        )
        .await;
    let buyers = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": [
                city, why_not, {"key": "nps", "type": "nps_0_10", "role": "nps"}
            ]}),
        )
        .await;

    // Load through the API, 100,000 rows a request.
    let mut rng = Lcg(14);
    let started = Instant::now();
    let non_buyer_rows = rows * 3 / 5;
    for (q, total, nb) in [
        (&non_buyer, non_buyer_rows, true),
        (&buyers, rows - non_buyer_rows, false),
    ] {
        let mut left = total;
        while left > 0 {
            let n = left.min(100_000);
            let mut body = String::with_capacity(n * 160);
            for _ in 0..n {
                body.push_str(&json!({"answers": answers(&mut rng, nb)}).to_string());
                body.push('\n');
            }
            app.import_ndjson(&t.token, q, body).await;
            left -= n;
        }
    }
    let load_s = started.elapsed().as_secs_f64();

    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Two cities", "filter": {"conditions": [{"question": "city", "values": ["c1", "c2"]}]}}),
        )
        .await;
    let path = format!("/api/v1/clients/{client}/barriers");
    let t0 = Instant::now();
    let first = app.get(&path, &t.token).await;
    let first_ms = ms(t0.elapsed());
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(
        first.body["n_non_buyers"].as_u64().unwrap() + first.body["n_buyers"].as_u64().unwrap(),
        rows as u64
    );
    let measure = async |path: &str| {
        let mut v = Vec::new();
        for i in 0..51 {
            let t0 = Instant::now();
            let r = app.get(path, &t.token).await;
            let d = ms(t0.elapsed());
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            if i > 0 {
                v.push(d);
            }
        }
        v
    };
    let all = measure(&path).await;
    let seg = measure(&format!("{path}?segment_id={segment}")).await;
    let by_stage = measure(&format!("{path}?stage_id={}", stage(1))).await;
    let mut after_new = Vec::new();
    for _ in 0..20 {
        let r = app
            .post(
                &format!("/api/v1/questionnaires/{non_buyer}/responses"),
                &t.token,
                json!({"answers": answers(&mut rng, true)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let t0 = Instant::now();
        let r = app.get(&path, &t.token).await;
        after_new.push(ms(t0.elapsed()));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    println!("## Barrier analysis at volume on PostgreSQL ({rows} responses)");
    println!();
    println!(
        "Load: {rows} responses imported through the API in {load_s:.1} s ({:.0}/s).",
        rows as f64 / load_s
    );
    println!();
    println!("| GET /clients/{{id}}/barriers | p50 | p99 |");
    println!("|---|---:|---:|");
    println!("| first read of the process (cache loaded by COPY) | {first_ms:.0} ms | |");
    for (what, v) in [
        ("whole client, 50 requests", &all),
        ("saved segment (2 of 8 cities), 50 requests", &seg),
        ("one CJM stage, 50 requests", &by_stage),
        (
            "whole client after one new response, 20 requests",
            &after_new,
        ),
    ] {
        println!(
            "| {what} | {:.1} ms | {:.1} ms |",
            pct(v, 0.5),
            pct(v, 0.99)
        );
    }
}
