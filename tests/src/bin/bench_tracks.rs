//! A customer track of a 1,000,000-response panel on PostgreSQL (issue 14):
//! the panel is imported through the API (worker off), a segment, a track
//! with three steps, a QFD matrix and a hypothesis on the segment are set
//! up, the recomputes run one by one as the worker runs them
//! (`run_recompute`: questionnaire, hypotheses, then the client's tracks),
//! and then
//!
//! - `GET /api/v1/tracks/{id}` with its parts fresh (the stored result),
//!   50 sequential requests after a warm-up, p50/p99 — the target is
//!   ≤ 100 ms p50;
//! - the tracks recompute itself (the worker's cost per data change);
//! - the same GET after one more response, when the parts are stale and
//!   computed on the read (the worker being off), 10 requests.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_tracks [-- --rows N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service::queue::RecomputeJob;
use tests::bench_util::{Lcg, import_responses, ms, pct, rows_arg};
use tests::{Mode, TEMPLATE_LIBRARY, spawn_with};
use uuid::Uuid;

const FACTORS: [&str; 5] = ["trust", "price", "place", "layout", "service"];

fn answers(rng: &mut Lcg) -> Value {
    let mut a = serde_json::Map::new();
    a.insert("buy_for".into(), json!(format!("o{}", rng.below(4))));
    a.insert("jtbd".into(), json!(format!("o{}", rng.below(5))));
    let picked: Vec<String> = (0..6)
        .filter(|_| rng.below(2) == 1)
        .map(|i| format!("o{i}"))
        .collect();
    a.insert("source".into(), json!(picked));
    for k in FACTORS {
        a.insert(k.into(), json!(1 + rng.below(5)));
    }
    a.insert("nps".into(), json!(rng.below(11)));
    a.insert("budget".into(), json!(2_000_000 + rng.below(8_000_000)));
    Value::Object(a)
}

fn opts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("o{i}")).collect()
}

#[tokio::main]
async fn main() {
    let rows = rows_arg("bench_tracks");
    let app = spawn_with(Mode::Postgres, |s| {
        s.run_worker = false;
        s.db_max_connections = 8;
    })
    .await;
    let t = app.signup("Bench").await;
    let agency = Uuid::parse_str(&t.agency_id).unwrap();
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}/clone"),
            &t.token,
            json!({}),
        )
        .await
        .body;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Developer", "touchpoint_library_id": lib["id"]}),
        )
        .await;
    let mut questions = vec![
        json!({"key": "buy_for", "type": "single_choice", "options": opts(4), "role": "segment_attribute"}),
        json!({"key": "jtbd", "type": "single_choice", "options": opts(5), "role": "jtbd"}),
        json!({"key": "source", "type": "multi_choice", "options": opts(6), "role": "source_channel"}),
    ];
    let mut factors = Vec::new();
    for k in FACTORS {
        let f = app
            .create(
                &format!("/api/v1/clients/{client}/choice-factors"),
                &t.token,
                json!({"name": k}),
            )
            .await;
        questions.push(json!({"key": k, "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": f}));
        factors.push(f);
    }
    questions.push(json!({"key": "nps", "type": "nps_0_10", "role": "nps"}));
    questions.push(json!({"key": "budget", "type": "number", "role": "spend", "min": 0}));
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": questions}),
        )
        .await;
    let qid = Uuid::parse_str(&q).unwrap();
    let client_id = Uuid::parse_str(&client).unwrap();

    // Load through the API, 100,000 rows a request.
    let mut rng = Lcg(14);
    let load_s = import_responses(&app, &t.token, &q, rows, || answers(&mut rng)).await;

    // The segment, its hypothesis, a QFD matrix and the track.
    let filter = json!({"conditions": [
        {"question": "buy_for", "values": ["o1"]},
        {"question": "budget", "min": 3_000_000, "max": 5_000_000},
        {"question": "source", "values": ["o0"]}
    ]});
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Parents", "filter": filter}),
        )
        .await;
    app.create(
        &format!("/api/v1/clients/{client}/hypotheses"),
        &t.token,
        json!({"name": "Trust matters more", "questionnaire_id": q, "segment": filter,
               "metric": {"kind": "mean", "question": "trust"}, "direction": "greater"}),
    )
    .await;
    let stage = |i: usize| lib["stages"][i]["id"].clone();
    let tp = |i: usize, j: usize| lib["stages"][i]["touchpoints"][j]["id"].clone();
    let cells: Vec<Value> = (0..20)
        .map(|j| {
            let value = [9, 3, 1][j % 3];
            json!({"factor_id": factors[j % 5], "touchpoint_id": tp(j % 5, j / 5), "value": value})
        })
        .collect();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/qfd/matrix"),
            Some(&t.token),
            Some(json!({"cells": cells})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let track = app
        .create(
            &format!("/api/v1/clients/{client}/tracks"),
            &t.token,
            json!({"name": "Parents' flat", "segment_id": segment, "steps": [
                {"stage_id": stage(0), "touchpoint_id": tp(0, 0), "task": "Find a flat near the parents",
                 "agents": [{"kind": "family", "strength": 5}], "barriers": [{"label": "Fear of the developer"}]},
                {"stage_id": stage(1), "touchpoint_id": tp(1, 0), "task": "Compare developers",
                 "agents": [{"kind": "reviews", "strength": 4}]},
                {"stage_id": stage(2), "task": "Get the mortgage"}
            ]}),
        )
        .await;

    // The worker's runs, in the order an import causes them.
    let run = |kind: &str, target: Uuid| RecomputeJob {
        agency_id: agency,
        kind: kind.into(),
        target_id: target,
    };
    let t0 = Instant::now();
    for job in [
        run(service::jobs::KIND_QUESTIONNAIRE, qid),
        run(service::hypotheses::KIND_HYPOTHESES, client_id),
        run(service::ledger::KIND_TRACKS, client_id),
    ] {
        app.services.run_recompute(&job, "bench").await.unwrap();
    }
    let first_s = t0.elapsed().as_secs_f64();
    let mut recompute = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        app.services
            .recompute_client_tracks(agency, client_id)
            .await
            .unwrap();
        recompute.push(ms(t0.elapsed()));
    }

    let path = format!("/api/v1/tracks/{track}");
    let measure = async |n: usize, source: &str| {
        let mut v = Vec::new();
        let mut seg_n = 0;
        for i in 0..=n {
            let t0 = Instant::now();
            let r = app.get(&path, &t.token).await;
            let d = ms(t0.elapsed());
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(r.body["source"], source, "{}", r.text);
            seg_n = r.body["computed"]["segment"]["n"].as_u64().unwrap();
            if i > 0 {
                v.push(d);
            }
        }
        (v, seg_n)
    };
    let (fresh, seg_n) = measure(50, "stored").await;
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{q}/responses"),
            &t.token,
            json!({"answers": answers(&mut rng)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (stale, _) = measure(10, "computed").await;

    println!("## Customer track of a {rows}-response panel on PostgreSQL");
    println!();
    println!(
        "Load: {rows} responses imported through the API in {load_s:.1} s; the \
         segment matches {seg_n}. First worker pass (questionnaire from an empty \
         cache, hypotheses, tracks): {first_s:.1} s."
    );
    println!();
    println!("| Figure | p50 | p99 / runs |");
    println!("|---|---:|---|");
    println!(
        "| GET /tracks/{{id}}, parts fresh (stored), 50 requests | {:.1} ms | {:.1} ms |",
        pct(&fresh, 0.5),
        pct(&fresh, 0.99)
    );
    println!(
        "| the client's tracks recomputed (warm cache), 3 runs | {:.0} ms | {:?} |",
        pct(&recompute, 0.5),
        recompute.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
    println!(
        "| GET /tracks/{{id}}, parts stale (computed on read), 10 requests | {:.0} ms | {:.0} ms |",
        pct(&stale, 0.5),
        pct(&stale, 0.99)
    );
}
