//! The live report page (issue 14, item 3) for the demo's real-estate
//! client (a 600-response customer panel with segments and hypotheses,
//! its QFD and UX map): `GET /r/{token}` through the API, sequential
//! requests after a warm-up, p50/p90/p99 — and the same page rendered by
//! the service call alone (`Services::report_page`: every figure read
//! through the REST endpoints' service calls, HTML and chart). Target:
//! p50 ≤ 200 ms.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-report cargo run -p tests --bin bench_report [-- --requests N --postgres]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use tests::bench_util::{ms, pct};
use tests::{Mode, spawn_app};

fn args() -> (usize, Mode) {
    let mut it = std::env::args().skip(1);
    let (mut requests, mut mode) = (200, Mode::Sqlite);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--requests" => requests = it.next().and_then(|v| v.parse().ok()).expect("a number"),
            "--postgres" => mode = Mode::Postgres,
            other => panic!("unknown argument {other}"),
        }
    }
    (requests, mode)
}

fn summary(name: &str, v: &[f64]) {
    println!(
        "{name}: n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let (requests, mode) = args();
    let app = spawn_app(mode).await;
    let demo = api::demo::load(&app.services)
        .await
        .unwrap()
        .expect("a fresh demo");
    let developer = demo.clients[0].1;
    let ctx = service::RequestCtx::worker(demo.agency_id);
    let link = app
        .services
        .issue_report_link(
            &ctx,
            developer,
            Some("bench".into()),
            Utc::now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let path = format!("/r/{}", link.url.unwrap().rsplit('/').next().unwrap());
    // The worker's results in place: the panel computed, hypotheses fresh.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let hyp = app
            .services
            .hypotheses_results(&ctx, developer)
            .await
            .unwrap();
        if html.contains("data-figure=\"n\" data-value=\"600\"") && hyp.status == "fresh" {
            break;
        }
        assert!(Instant::now() < deadline, "the demo never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        app.http.get(app.url(&path)).send().await.unwrap();
    }
    let mut http = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let t = Instant::now();
        let r = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        bytes = r.bytes().await.unwrap().len();
        http.push(ms(t.elapsed()));
    }
    let token = path.trim_start_matches("/r/").to_owned();
    let mut direct = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let page = app.services.report_page(&token).await.unwrap();
        assert!(page.found);
        direct.push(ms(t.elapsed()));
    }
    println!(
        "report page of the demo's real-estate client ({:?}, {} bytes of HTML)",
        mode, bytes
    );
    summary("GET /r/{token}", &http);
    summary("Services::report_page", &direct);
}
