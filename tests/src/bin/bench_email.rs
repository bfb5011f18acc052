//! Newsletter throughput to a real SMTP server on loopback (issue 4): a
//! campaign to 10,000 confirmed subscribers through the whole pipeline
//! (fan-out into the ledger, claim, render-once, pooled SMTP, outcome
//! recorded), next to a bare lettre loop sending the same number of messages
//! to the same server in the same run. Also the time to render a digest-size
//! email per recipient.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_email [-- --mode sqlite|postgres] [--n N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, SmtpSink, spawn_with};

fn args() -> (Mode, usize) {
    let mut mode = Mode::Postgres;
    let mut n = 10_000;
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
    (mode, n)
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
    let (mode, n) = args();
    // Bare loop first, on its own sink.
    let bare_sink = SmtpSink::start(&[]);
    let bare = bare_loop(&bare_sink.url(), n).await;
    drop(bare_sink);

    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.worker_concurrency = 2;
    })
    .await;
    let t = app.signup("Bench").await;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Shop", "locale": "en"}),
        )
        .await;
    let list = app
        .create(
            &format!("/api/v1/clients/{client}/lists"),
            &t.token,
            json!({"name": "News", "consent_text": "I agree."}),
        )
        .await;
    let mut csv = String::from("email,name,consent_source\n");
    for i in 0..n {
        csv.push_str(&format!("r{i}@example.com,Reader {i},bench\n"));
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{list}/subscribers/import"),
            Some(&t.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let campaign = app
        .create(
            &format!("/api/v1/clients/{client}/campaigns"),
            &t.token,
            json!({"list_id": list, "name": "Bench", "subject": "News for {{ subscriber.name }}",
                   "html": "<p>Hello {{ subscriber.name }}!</p>".repeat(40), "text": "Hello {{ subscriber.name }}!"}),
        )
        .await;
    let started = Instant::now();
    let r = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/send"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut first_sent: Option<Duration> = None;
    loop {
        let s = app
            .get(&format!("/api/v1/campaigns/{campaign}/stats"), &t.token)
            .await;
        let sent = s.body["sent"].as_i64().unwrap_or(0);
        if sent > 0 && first_sent.is_none() {
            first_sent = Some(started.elapsed());
        }
        if sent as usize == n {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{}", s.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    let mode_name = match mode {
        Mode::Sqlite => "SQLite",
        Mode::Postgres => "PostgreSQL",
    };
    println!("## Newsletter throughput ({mode_name}, {n} recipients, aiosmtpd on loopback)");
    println!();
    println!("| Figure | Value |");
    println!("|---|---:|");
    println!(
        "| bare lettre loop to the same SMTP server (pool 8, 16 in flight) | {bare:.0} messages/s |"
    );
    println!(
        "| campaign through the pipeline: send → all {n} recorded sent | {elapsed:.1} s = {rate:.0} messages/s ({:.0}% of the bare loop) |",
        100.0 * rate / bare
    );
    println!(
        "| first message recorded sent after | {:.2} s |",
        first_sent.unwrap_or_default().as_secs_f64()
    );
    println!("| messages the SMTP server received | {received} |");
    println!("| rendering one newsletter (layout, both parts) | {render_us:.0} µs |");
}
