//! Ingestion at volume: concurrent duplicate imports, coalesced recomputes,
//! several workers computing each data version once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tests::{Mode, TestApp, both_modes, ndjson_rows, panel, spawn_app, spawn_with};

async fn query_i64(app: &TestApp, sql: &str) -> i64 {
    let db = &app.services.db;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn two_concurrent_imports_of_the_same_batch_store_it_once(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let body = ndjson_rows("same-", 10_000);
    let path = format!(
        "/api/v1/questionnaires/{}/responses/import",
        p.questionnaire
    );
    let (a, b) = tokio::join!(
        app.raw(
            Method::POST,
            &path,
            Some(&t.token),
            "application/x-ndjson",
            body.clone()
        ),
        app.raw(
            Method::POST,
            &path,
            Some(&t.token),
            "application/x-ndjson",
            body.clone()
        ),
    );
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    let inserted = a.body["inserted"].as_u64().unwrap() + b.body["inserted"].as_u64().unwrap();
    let duplicates =
        a.body["duplicates"].as_u64().unwrap() + b.body["duplicates"].as_u64().unwrap();
    assert_eq!((inserted, duplicates), (10_000, 10_000));
    let stored = query_i64(
        &app,
        &format!(
            "SELECT COUNT(*) FROM responses WHERE questionnaire_id = '{}'",
            p.questionnaire
        ),
    )
    .await;
    // SQLite stores UUIDs as blobs: count through the API there.
    if mode == Mode::Postgres {
        assert_eq!(stored, 10_000);
    }
    let s = app.wait_for_summary(&t.token, &p.questionnaire, 1).await;
    assert_eq!(s["summary"]["n"], 10_000);
    assert_eq!(
        s["current_data_version"], 1,
        "the duplicate batch did not bump the version"
    );
}

/// A bulk import that partly repeats stored rows (first and last lines
/// among them, plus rows without an external id) stores exactly the new
/// ones: on PostgreSQL the first COPY is refused by the unique index and
/// the batch goes again without the stored ids.
async fn a_bulk_import_overlapping_stored_rows_stores_only_the_new_ones(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let import = |body: String| {
        let (app, token, q) = (&app, &t.token, &p.questionnaire);
        async move {
            let r = app.import_ndjson(token, q, body).await;
            (
                r["inserted"].as_u64().unwrap(),
                r["duplicates"].as_u64().unwrap(),
            )
        }
    };
    // Rows a-0 … a-1999 stored.
    assert_eq!(import(ndjson_rows("a-", 2_000)).await, (2_000, 0));
    // a-1500 … a-1999 again (first in the body), 2,000 new b- rows,
    // a-0 … a-99 again (last), and 50 rows without an external id.
    let again: String = ndjson_rows("a-", 2_000)
        .lines()
        .skip(1_500)
        .map(|l| format!("{l}\n"))
        .collect();
    let head: String = ndjson_rows("a-", 100);
    let anonymous: String = ndjson_rows("c-", 50)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}\n", json!({"answers": v["answers"]}))
        })
        .collect();
    let body = format!("{again}{}{anonymous}{head}", ndjson_rows("b-", 2_000));
    assert_eq!(import(body.clone()).await, (2_050, 600));
    // The same body once more: only the anonymous rows are new.
    assert_eq!(import(body).await, (50, 2_600));
    let s = app.wait_for_summary(&t.token, &p.questionnaire, 3).await;
    assert_eq!(s["summary"]["n"], 4_100, "{s}");
}

/// A bulk import (the PostgreSQL COPY path) keeps every character: text
/// with backslashes, tabs, newlines, quotes and Cyrillic comes back as sent,
/// and ids already stored are left out.
async fn bulk_imports_keep_every_character(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let tricky = "tab\there, new\nline, back\\slash \\N, \"quoted\", кириллица, \r end";
    let mut body = String::new();
    for i in 0..1_500 {
        let mut line = serde_json::json!({
            "external_id": format!("x\\{i}\t"),
            "respondent_ref": "ref\\1",
            "answers": {"city": "msk", "comment": format!("{tricky} #{i}")}
        });
        if i == 0 {
            line["submitted_at"] = serde_json::json!("2026-01-02T03:04:05Z");
        }
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let path = format!(
        "/api/v1/questionnaires/{}/responses/import",
        p.questionnaire
    );
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "application/x-ndjson",
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], 1_500);
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(
        (r.body["inserted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(1_500))
    );
    let list = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/responses?limit=1",
                p.questionnaire
            ),
            &t.token,
        )
        .await;
    let first = &list.body["items"][0];
    assert_eq!(first["external_id"], "x\\0\t", "{}", list.text);
    assert_eq!(first["respondent_ref"], "ref\\1");
    assert_eq!(first["answers"]["comment"], format!("{tricky} #0"));
    assert_eq!(first["submitted_at"], "2026-01-02T03:04:05Z");
}

async fn a_100k_import_triggers_a_handful_of_recomputes(mode: Mode) {
    let app = spawn_app(mode).await;
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
            "text/csv",
            tests::csv_rows("big-", 100_000),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], 100_000);
    let version = r.body["data_version"].as_i64().unwrap();
    let s = app
        .wait_for_summary(&t.token, &p.questionnaire, version)
        .await;
    assert_eq!(s["summary"]["n"], 100_000);
    assert_eq!(s["data_version"], version);
    // i % 11 over 100k rows = 9,090 full cycles + 0..=9: scores 9–10 → 2·9,090 + 1
    // promoters; 0–6 → 7·9,090 + 7 detractors.
    assert_eq!(s["summary"]["nps"]["promoters"], 18_181);
    assert_eq!(s["summary"]["nps"]["detractors"], 63_637);
    // The run is recorded just after the summary it stored: wait for it.
    app.wait_for_job(&t.token, "questionnaire_summary", &p.questionnaire, version)
        .await;
    let runs = app
        .get("/api/v1/jobs?status=succeeded&limit=200", &t.token)
        .await;
    let n = runs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "questionnaire_summary")
        .count();
    assert!(
        (1..=3).contains(&n),
        "{n} recomputes for one import: {}",
        runs.text
    );
}

async fn a_burst_of_single_posts_is_coalesced_and_each_version_computed_once(mode: Mode) {
    // API without a worker, plus two independent workers (own connection
    // pools and queue connections) sharing the database and the queue.
    let app = spawn_with(mode, |s| s.run_worker = false).await;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let services = api::startup::connect(&app.settings).await.unwrap();
        workers.push(api::startup::start_worker(services, &app.settings));
    }
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let key = app.api_key(&t.token, &["ingest"]).await;
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let posts = 300usize;
    let results = futures::future::join_all((0..posts).map(|i| {
        let (app, key, path) = (&app, &key, &path);
        async move {
            app.post(
                path,
                key,
                json!({"external_id": format!("p{i}"), "answers": {"city": "msk", "nps": i % 11}}),
            )
            .await
        }
    }))
    .await;
    assert!(results.iter().all(|r| r.status == StatusCode::CREATED));
    let last = results
        .iter()
        .map(|r| r.body["data_version"].as_i64().unwrap())
        .max()
        .unwrap();
    assert_eq!(last, posts as i64, "one version per stored post");
    let s = app.wait_for_summary(&t.token, &p.questionnaire, last).await;
    assert_eq!(s["summary"]["n"], posts);
    // Let any straggling job finish, then read the ledger.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = query_i64(
        &app,
        "SELECT COUNT(*) FROM job_runs WHERE status = 'succeeded' AND kind = 'questionnaire_summary'",
    )
    .await;
    let distinct = query_i64(
        &app,
        "SELECT COUNT(DISTINCT data_version) FROM job_runs WHERE status = 'succeeded' AND kind = 'questionnaire_summary'",
    )
    .await;
    let workers_used = query_i64(&app, "SELECT COUNT(DISTINCT worker_id) FROM job_runs").await;
    eprintln!("{mode:?}: {posts} posts → {runs} recomputes by {workers_used} workers");
    assert_eq!(runs, distinct, "some data version was computed twice");
    assert!(
        runs < posts as i64 / 2,
        "{runs} recomputes for {posts} posts: not coalesced"
    );
    drop(workers);
}

async fn the_served_openapi_document_is_the_checked_in_one(mode: Mode) {
    let app = spawn_app(mode).await;
    let served = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .text;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let checked_in = std::fs::read_to_string(&file).unwrap();
    assert!(
        served == checked_in,
        "openapi/openapi.json is stale: run `cargo run -p openapi`"
    );
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route documents its problem responses.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/api/v1/") {
            for (method, op) in ops.as_object().unwrap() {
                for code in ["401", "404", "422", "500"] {
                    assert!(
                        op["responses"][code].is_object(),
                        "{method} {path} lacks {code}"
                    );
                }
            }
        }
    }
}

/// The responses list pages in stored order — by data version, then id —
/// so rows written later always come after the pages already read; its
/// cursor is checked.
async fn responses_page_in_stored_order(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    for i in 0..3 {
        let r = app
            .post(
                &path,
                &t.token,
                json!({"answers": {"city": "msk", "nps": i}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    app.import_ndjson(&t.token, &p.questionnaire, ndjson_rows("r", 4))
        .await;
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            None => format!("{path}?limit=2"),
            Some(c) => format!("{path}?limit=2&after={c}"),
        };
        let page = app.get(&url, &t.token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            seen.push((
                item["data_version"].as_i64().unwrap(),
                item["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => break,
        }
        // A row stored while paging comes last, not among the pages read.
        if seen.len() == 2 {
            let r = app
                .post(
                    &path,
                    &t.token,
                    json!({"answers": {"city": "spb", "nps": 5}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
    }
    let versions: Vec<i64> = seen.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, [1, 2, 3, 4, 4, 4, 4, 5], "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "not in (data_version, id) order");
    for bad in [
        "nonsense",
        "1:not-a-uuid",
        "x:019ad3a0-0000-7000-8000-000000000000",
    ] {
        let r = app.get(&format!("{path}?after={bad}"), &t.token).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), ["after"]);
    }
}

both_modes!(
    responses_page_in_stored_order,
    two_concurrent_imports_of_the_same_batch_store_it_once,
    a_100k_import_triggers_a_handful_of_recomputes,
    a_burst_of_single_posts_is_coalesced_and_each_version_computed_once,
    the_served_openapi_document_is_the_checked_in_one,
    bulk_imports_keep_every_character,
    a_bulk_import_overlapping_stored_rows_stores_only_the_new_ones,
);
