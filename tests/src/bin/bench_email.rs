//! Newsletter throughput to a real SMTP server on loopback (issue 4): a
//! campaign to 10,000 confirmed subscribers through the whole pipeline
//! (fan-out into the ledger, claim, render-once, pooled SMTP, outcome
//! recorded), next to a bare lettre loop sending the same number of messages
//! to the same server in the same run. Also the time to render a newsletter,
//! and to build one client's digest with its chart (reads, PNG, render).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_email [-- --mode sqlite|postgres] [--n N] [--pool N] [--digests-only]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tests::{Mode, SmtpSink, spawn_with};

struct Args {
    mode: Mode,
    n: usize,
    digests_only: bool,
    /// The pipeline's SMTP pool (= messages in flight per worker process).
    pool: Option<u32>,
}

fn args() -> Args {
    let mut mode = Mode::Postgres;
    let mut n = 10_000;
    let mut digests_only = false;
    let mut pool = None;
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
            "--digests-only" => digests_only = true,
            "--pool" => pool = Some(it.next().and_then(|v| v.parse().ok()).expect("--pool N")),
            other => panic!("unknown argument {other}"),
        }
    }
    Args {
        mode,
        n,
        digests_only,
        pool,
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Sqlite => "SQLite",
        Mode::Postgres => "PostgreSQL",
    }
}

/// The value at quantile `q` of sorted `xs`.
fn quantile(xs: &[f64], q: f64) -> f64 {
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

/// Digests of `clients` clients of one agency, each with a customer panel
/// of `rows` responses over two choice factors (so a two-bar chart), built
/// `runs` times each through `Services::build_digest`: the reads, the PNG
/// chart and the render, as the scheduler does per client.
async fn bench_digests(mode: Mode, clients: usize, rows: usize, runs: usize) {
    let app = spawn_with(mode, |_| {}).await;
    let t = app.signup("Bench").await;
    let mut models = Vec::new();
    for i in 0..clients {
        let p = tests::panel(&app, &t).await;
        app.import_ndjson(
            &t.token,
            &p.questionnaire,
            tests::ndjson_rows(&format!("c{i}-"), rows),
        )
        .await;
        app.wait_for_summary(&t.token, &p.questionnaire, 1).await;
        let id: uuid::Uuid = p.client.parse().unwrap();
        models.push(
            <entity::client::Entity as sea_orm::EntityTrait>::find_by_id(id)
                .one(&app.services.db)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let touchpoints = <entity::touchpoint::Entity as sea_orm::EntityTrait>::find()
        .all(&app.services.db)
        .await
        .unwrap()
        .len();
    // Warm-up, and a check that the chart is there.
    let first = app
        .services
        .build_digest(&models[0], chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(first.inline.len(), 1, "the digest has its chart");
    let mut build_ms = Vec::new();
    for _ in 0..runs {
        for c in &models {
            let t0 = Instant::now();
            let d = app
                .services
                .build_digest(c, chrono::Utc::now())
                .await
                .unwrap();
            build_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            assert_eq!(d.inline.len(), 1);
        }
    }
    build_ms.sort_by(f64::total_cmp);
    // The template alone, with the same figures (no reads, no chart).
    let brand = service::email::Brand::of("Bench");
    let data = json!({"client": "Fitness club", "period": "2026-11-23", "nothing_new": false,
        "panel": {"title": "Customer panel", "n": rows, "nps": "12.5", "nps_change": "+2.5", "nps_up": true},
        "factors": [{"name": "Price", "mean": "3.00"}, {"name": "Location", "mean": "2.96"}],
        "chart_height": 56, "verdicts": [], "ux": []});
    let mut render_us = Vec::new();
    for _ in 0..2_000 {
        let t0 = Instant::now();
        service::email::render::render("digest", "en", &brand, data.clone()).unwrap();
        render_us.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    render_us.sort_by(f64::total_cmp);
    println!(
        "## Digest per client ({}, {clients} clients × {runs} builds, {rows} responses each, {touchpoints} touchpoints in the agency)",
        mode_name(mode)
    );
    println!();
    println!("| Figure | Value |");
    println!("|---|---:|");
    println!(
        "| build one client's digest (reads + PNG chart + render), median | {:.2} ms (p90 {:.2} ms, min {:.2} ms) |",
        quantile(&build_ms, 0.5),
        quantile(&build_ms, 0.9),
        build_ms[0]
    );
    println!(
        "| of which the template alone (HTML + text), median | {:.0} µs |",
        quantile(&render_us, 0.5)
    );
    println!(
        "| chart PNG size | {} bytes (base64) |",
        first.inline[0].data.len()
    );
    println!();
}

/// The same server, the same number of messages, lettre's pool and 16 in
/// flight: what the SMTP server accepts at most from this machine.
async fn bare_loop(url: &str, n: usize) -> f64 {
    let t: AsyncSmtpTransport<Tokio1Executor> = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .unwrap()
        .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(8))
        .build();
    let body = "<p>Hello!</p>".repeat(40);
    let started = Instant::now();
    let sent = futures::stream::iter(0..n)
        .map(|i| {
            let t = t.clone();
            let body = body.clone();
            async move {
                let m = Message::builder()
                    .from("bench@growthpoint.localhost".parse().unwrap())
                    .to(format!("r{i}@example.com").parse().unwrap())
                    .subject("Bare loop")
                    .multipart(lettre::message::MultiPart::alternative_plain_html(
                        "Hello!".to_owned(),
                        body,
                    ))
                    .unwrap();
                t.send(m).await.is_ok()
            }
        })
        .buffer_unordered(16)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    assert_eq!(sent, n);
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let Args {
        mode,
        n,
        digests_only,
        pool,
    } = args();
    bench_digests(mode, 10, 200, 20).await;
    if digests_only {
        return;
    }
    // Bare loop first, on its own sink.
    let bare_sink = SmtpSink::start(&[]);
    let bare = bare_loop(&bare_sink.url(), n).await;
    drop(bare_sink);

    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.worker_concurrency = 2;
        if let Some(p) = pool {
            s.smtp_pool_size = p;
        }
    })
    .await;
    let news = tests::newsletter(&app, n, &"<p>Hello {{ subscriber.name }}!</p>".repeat(40)).await;
    let started = Instant::now();
    news.send(&app).await;
    let mut first_sent: Option<Duration> = None;
    news.wait_all_sent(&app, n, 600, |s| {
        if s["sent"].as_i64().unwrap_or(0) > 0 && first_sent.is_none() {
            first_sent = Some(started.elapsed());
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let received = sink.messages().len();
    let rate = n as f64 / elapsed;

    // Rendering: one personalised newsletter, many times.
    let brand = service::email::Brand::of("Bench");
    let t0 = Instant::now();
    let runs = 2_000;
    for i in 0..runs {
        service::email::render::render(
            "newsletter",
            "en",
            &brand,
            json!({"list": "News", "subject": format!("News {i}"), "body_html": "<p>Hello!</p>".repeat(40), "body_text": "Hello!", "unsubscribe_url": "http://x/u?token=1"}),
        )
        .unwrap();
    }
    let render_us = t0.elapsed().as_secs_f64() * 1e6 / runs as f64;

    println!(
        "## Newsletter throughput ({}, {n} recipients, aiosmtpd on loopback)",
        mode_name(mode)
    );
    println!();
    println!("| Figure | Value |");
    println!("|---|---:|");
    println!(
        "| bare lettre loop to the same SMTP server (pool 8, 16 in flight) | {bare:.0} messages/s |"
    );
    println!(
        "| campaign through the pipeline (pool {p}, {p} in flight): send → all {n} recorded sent | {elapsed:.1} s = {rate:.0} messages/s ({:.0}% of the bare loop) |",
        100.0 * rate / bare,
        p = app.settings.smtp_pool_size
    );
    println!(
        "| first message recorded sent after | {:.2} s |",
        first_sent.unwrap_or_default().as_secs_f64()
    );
    println!("| messages the SMTP server received | {received} |");
    println!("| rendering one newsletter (layout, both parts) | {render_us:.0} µs |");
}
