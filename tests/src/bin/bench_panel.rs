//! The customer panel at volume on PostgreSQL (issue 3): 1,000,000
//! responses of a 14-question panel imported through the API, then
//!
//! - the worker's full recompute from PostgreSQL, load included (a process
//!   with an empty panel cache: read every row, fold, store summary and
//!   panel snapshots);
//! - folding in one new response (the worker's recompute after one POST,
//!   with the process's cache warm);
//! - the segment-filtered panel through the API (`GET …/panel?filter=`) and
//!   the materialised unfiltered panel, sequential requests, p50/p99;
//! - peak memory of the process (app, worker state and load generator).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_panel [-- --rows N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::bench_util::{Lcg, ms, pct, peak_rss_mib, rows_arg};
use tests::{Mode, spawn_with};
use uuid::Uuid;

const OPTIONS: [(&str, usize); 4] = [("buy_for", 4), ("city", 8), ("jtbd", 5), ("age", 6)];
const MULTI: [(&str, usize); 2] = [("source", 6), ("fears", 5)];
const FACTORS: [&str; 5] = ["trust", "price", "place", "layout", "service"];
const ADVICE: [&str; 4] = [
    "More parking",
    "Faster paperwork",
    "more parking!",
    "Show progress online",
];

fn opts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("o{i}")).collect()
}

fn answers(rng: &mut Lcg) -> Value {
    let mut a = serde_json::Map::new();
    for (k, n) in OPTIONS {
        a.insert(k.into(), json!(format!("o{}", rng.below(n as u64))));
    }
    for (k, n) in MULTI {
        let picked: Vec<String> = (0..n)
            .filter(|_| rng.below(2) == 1)
            .map(|i| format!("o{i}"))
            .collect();
        a.insert(k.into(), json!(picked));
    }
    for k in FACTORS {
        a.insert(k.into(), json!(1 + rng.below(5)));
    }
    a.insert("nps".into(), json!(rng.below(11)));
    a.insert("budget".into(), json!(2_000_000 + rng.below(8_000_000)));
    if rng.below(10) == 0 {
        a.insert("advice".into(), json!(ADVICE[rng.below(4) as usize]));
    }
    Value::Object(a)
}

#[tokio::main]
async fn main() {
    let rows = rows_arg("bench_panel");
    let app = spawn_with(Mode::Postgres, |s| {
        s.run_worker = false;
        s.db_max_connections = 8;
    })
    .await;
    let t = app.signup("Bench").await;
    let agency = Uuid::parse_str(&t.agency_id).unwrap();
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Developer"}))
        .await;
    let mut questions = Vec::new();
    for (k, n) in OPTIONS {
        let role = if k == "jtbd" {
            "jtbd"
        } else {
            "segment_attribute"
        };
        questions
            .push(json!({"key": k, "type": "single_choice", "options": opts(n), "role": role}));
    }
    for (k, n) in MULTI {
        questions.push(json!({"key": k, "type": "multi_choice", "options": opts(n)}));
    }
    for k in FACTORS {
        let f = app
            .create(
                &format!("/api/v1/clients/{client}/choice-factors"),
                &t.token,
                json!({"name": k}),
            )
            .await;
        questions.push(json!({"key": k, "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": f}));
    }
    questions.push(json!({"key": "nps", "type": "nps_0_10", "role": "nps"}));
    questions.push(json!({"key": "budget", "type": "number", "role": "spend", "min": 0}));
    questions.push(json!({"key": "advice", "type": "text", "role": "recommendation"}));
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": questions}),
        )
        .await;
    let qid = Uuid::parse_str(&q).unwrap();

    // Load through the API, 100,000 rows a request.
    let mut rng = Lcg(42);
    let started = Instant::now();
    let mut left = rows;
    while left > 0 {
        let n = left.min(100_000);
        let mut body = String::with_capacity(n * 330);
        for _ in 0..n {
            body.push_str(&json!({"answers": answers(&mut rng)}).to_string());
            body.push('\n');
        }
        let r = app
            .raw(
                Method::POST,
                &format!("/api/v1/questionnaires/{q}/responses/import"),
                Some(&t.token),
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        left -= n;
    }
    let load_s = started.elapsed().as_secs_f64();

    // Full recompute: a process that has never seen the questionnaire.
    let mut full = Vec::new();
    for _ in 0..3 {
        let mut fresh = app.services.clone();
        fresh.panels = Arc::new(Default::default());
        let t0 = Instant::now();
        let v = fresh
            .recompute_questionnaire_summary(agency, qid)
            .await
            .unwrap();
        full.push(ms(t0.elapsed()));
        assert_eq!(v, (rows.div_ceil(100_000)) as i64);
    }
    let peak_after_full = peak_rss_mib();

    // Where the full recompute's time goes: PostgreSQL's COPY alone (rows
    // counted), and the COPY with every answers document decoded (no fold).
    let (ds, _, version) = app.services.panel_data(agency, qid).await.unwrap();
    let sql = service::panel::panel_copy_sql(agency, qid, 0, version);
    let pool = app.services.db.get_postgres_connection_pool().clone();
    let (mut copy_only, mut decode_only) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t0 = Instant::now();
        let n = service::pgcopy::copy_out(&pool, sql.clone(), 2, 0usize, |n, _| {
            *n += 1;
            Ok(())
        })
        .await
        .unwrap();
        copy_only.push(ms(t0.elapsed()));
        assert_eq!(n, ds.len());
        let decoder = service::panel_rows::RowDecoder::new(&ds.questions);
        let t0 = Instant::now();
        service::pgcopy::copy_out(&pool, sql.clone(), 2, (), move |_, f| {
            decoder
                .decode(service::pgcopy::json(f[1])?)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap();
        decode_only.push(ms(t0.elapsed()));
    }

    // Folding in one response: warm this process's cache, then one POST and
    // one recompute at a time.
    app.services
        .recompute_questionnaire_summary(agency, qid)
        .await
        .unwrap();
    let mut fold = Vec::new();
    for _ in 0..30 {
        let r = app
            .post(
                &format!("/api/v1/questionnaires/{q}/responses"),
                &t.token,
                json!({"answers": answers(&mut rng)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let t0 = Instant::now();
        app.services
            .recompute_questionnaire_summary(agency, qid)
            .await
            .unwrap();
        fold.push(ms(t0.elapsed()));
    }

    // Reads through the API, sequential, after one warm-up each.
    let filter = json!({"conditions": [
        {"question": "buy_for", "values": ["o1"]},
        {"question": "budget", "min": 3_000_000, "max": 5_000_000},
        {"question": "source", "values": ["o0"]}
    ]});
    let seg_path = format!(
        "/api/v1/questionnaires/{q}/panel?filter={}",
        tests::url_encode(&filter.to_string())
    );
    let all_path = format!("/api/v1/questionnaires/{q}/panel");
    let measure = async |path: &str| {
        let mut v = Vec::new();
        let mut n = 0;
        for i in 0..51 {
            let t0 = Instant::now();
            let r = app.get(path, &t.token).await;
            let d = ms(t0.elapsed());
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            n = r.body["panel"]["n"].as_u64().unwrap();
            if i > 0 {
                v.push(d);
            }
        }
        (v, n)
    };
    let (seg, seg_n) = measure(&seg_path).await;
    let (all, all_n) = measure(&all_path).await;
    let peak = peak_rss_mib();

    println!("## Panel at volume on PostgreSQL ({rows} responses, 14 questions)");
    println!();
    println!(
        "Load: {rows} responses imported through the API in {load_s:.1} s ({:.0}/s).",
        rows as f64 / load_s
    );
    println!();
    println!("| Figure | Median | Other runs |");
    println!("|---|---:|---|");
    println!(
        "| Full recompute from PostgreSQL, load included (3 runs) | {:.0} ms | {:?} |",
        pct(&full, 0.5),
        full.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
    println!(
        "| … of which PostgreSQL's COPY alone (3 runs) | {:.0} ms | {:?} |",
        pct(&copy_only, 0.5),
        copy_only.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
    println!(
        "| … COPY with every document decoded, no fold (3 runs) | {:.0} ms | {:?} |",
        pct(&decode_only, 0.5),
        decode_only.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
    println!(
        "| Worker recompute after one new response (30 runs) | {:.2} ms | p95 {:.2} ms, max {:.2} ms |",
        pct(&fold, 0.5),
        pct(&fold, 0.95),
        pct(&fold, 1.0)
    );
    println!(
        "| GET segment panel (n = {seg_n}), 50 requests | {:.1} ms | p99 {:.1} ms |",
        pct(&seg, 0.5),
        pct(&seg, 0.99)
    );
    println!(
        "| GET unfiltered panel (materialised, n = {all_n}), 50 requests | {:.1} ms | p99 {:.1} ms |",
        pct(&all, 0.5),
        pct(&all, 0.99)
    );
    println!();
    println!(
        "Peak memory (VmHWM) of the process: {peak_after_full:.0} MiB after the full recomputes, {peak:.0} MiB at the end."
    );
}
