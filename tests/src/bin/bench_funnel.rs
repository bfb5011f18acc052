//! The funnel side at volume on PostgreSQL (issue 12):
//!
//! - rescoring 1,000,000 contacts of one client with 10 point rules and a
//!   50-feature model (5 categorical attributes of 8 levels, 10 numeric),
//!   100,000 of them labelled: the worker's whole job — read, refit, score,
//!   write — timed four times: the first scoring, again with nothing
//!   changed, after 1% of the contacts changed, and after 1,000 new
//!   outcomes (the model refitted, so every probability moves);
//! - finding the due chain steps among 1,000,000 enrolments (the tick's
//!   query), median of 21 runs, and one tick handling 500 due steps;
//! - 10,000 chain emails against a 10,000-recipient newsletter, both
//!   through the whole pipeline to the same local SMTP server.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench_funnel [-- --contacts N] [--emails N] [--skip-emails | --only-emails]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

/// The production binary's allocator (api/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use tests::bench_util::{ms, pct, peak_rss_mib};
use tests::{Mode, SmtpSink, TestApp, newsletter, spawn_with};
use uuid::Uuid;

struct Args {
    contacts: usize,
    emails: usize,
    skip_emails: bool,
    only_emails: bool,
}

fn args() -> Args {
    let mut a = Args {
        contacts: 1_000_000,
        emails: 10_000,
        skip_emails: false,
        only_emails: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--contacts" => {
                a.contacts = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--contacts N")
            }
            "--emails" => a.emails = it.next().and_then(|v| v.parse().ok()).expect("--emails N"),
            "--skip-emails" => a.skip_emails = true,
            "--only-emails" => a.only_emails = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn rules() -> serde_json::Value {
    let eq = |name: &str, key: &str, value: &str, points: i32| json!({"name": name, "points": points, "when": {"kind": "attr_equals", "key": key, "value": value}});
    let within = |name: &str, key: &str, min: f64, max: f64, points: i32| json!({"name": name, "points": points, "when": {"kind": "attr_within", "key": key, "min": min, "max": max}});
    json!([
        eq("k1 is v1", "k1", "v1", 20),
        eq("k2 is v3", "k2", "v3", 15),
        {"name": "k3 has 5", "points": 10, "when": {"kind": "attr_contains", "key": "k3", "value": "5"}},
        within("n1 mid", "n1", 20.0, 60.0, 10),
        within("n2 high", "n2", 70.0, 100.0, 10),
        within("n3 low", "n3", 0.0, 10.0, 5),
        within("n4 mid", "n4", 30.0, 50.0, 5),
        eq("k4 is v7", "k4", "v7", 10),
        {"name": "confirmed", "points": 20, "when": {"kind": "event", "event": "confirmed", "within_days": 30}},
        {"name": "bought", "points": 30, "when": {"kind": "purchase", "within_days": 30}}
    ])
}

/// Ids as the product makes them (UUID v7: time first), one millisecond
/// apart in insertion order, from `h` (12 hex digits) and `r` (a random
/// uuid's text) of the row source.
const V7_ID: &str = "(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 16, 3) || '-' || substr(r, 20))::uuid";

/// 5 categorical attributes of 8 levels and 10 numeric ones; every 10th
/// contact labelled, a third of those converted.
fn insert_contacts_sql(agency: Uuid, client: Uuid, from: usize, to: usize) -> String {
    // Levels and numbers vary among the labelled rows (every 10th) too.
    let cats: Vec<String> = (1..=5)
        .map(|k| format!("'k{k}', 'v' || ((i / 10 * {} + i / 7) % 8)", 2 * k + 1))
        .collect();
    let nums: Vec<String> = (1..=10)
        .map(|k| format!("'n{k}', ((i / 10 * {} + i / 3) % 100)", 7 * k + 3))
        .collect();
    format!(
        "INSERT INTO contacts (id, agency_id, client_id, email, name, locale, status, source_channel, \
         funnel, attributes, customer_ref, confirmed_at, converted, converted_at, conversion_value, \
         outcome_source, created_at, updated_at) \
         SELECT {id}, '{agency}', '{client}', 'c' || i || '@example.com', NULL, NULL, \
         'active', NULL, 'reach', jsonb_build_object({}, {}), NULL, \
         CASE WHEN i % 3 = 0 THEN now() - interval '3 days' END, \
         CASE WHEN i % 10 = 0 THEN ((i / 10) * 7919) % 3 = 0 END, NULL, NULL, \
         CASE WHEN i % 10 = 0 THEN 'api' END, now(), now() \
         FROM (SELECT i, lpad(to_hex(1765000000000 + i), 12, '0') AS h, gen_random_uuid()::text AS r \
           FROM generate_series({from}, {to}) AS i) AS g",
        cats.join(", "),
        nums.join(", "),
        id = V7_ID,
    )
}

async fn rescoring(app: &TestApp, n: usize) {
    let t = app.signup("Bench").await;
    let agency = Uuid::parse_str(&t.agency_id).unwrap();
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let client_id = Uuid::parse_str(&client).unwrap();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/scoring"),
            Some(&t.token),
            Some(json!({"rules": rules()})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let db = &app.services.db;
    let started = Instant::now();
    for from in (1..=n).step_by(100_000) {
        let to = (from + 99_999).min(n);
        db.execute_unprepared(&insert_contacts_sql(agency, client_id, from, to))
            .await
            .unwrap();
    }
    db.execute_unprepared("ANALYZE contacts").await.unwrap();
    println!(
        "{n} contacts inserted by SQL in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // 1% of the unlabelled contacts get a new value of a ruled attribute
    // (the model stays); then 1,000 more outcomes (the model is refitted:
    // every probability moves).
    let some_change = format!(
        "UPDATE contacts SET attributes = (attributes::jsonb || '{{\"n1\": 42}}')::json \
         WHERE client_id = '{client_id}' AND converted IS NULL AND email LIKE 'c%01@example.com'"
    );
    let refit = format!(
        "UPDATE contacts SET converted = (length(email) % 2 = 0), outcome_source = 'api' \
         WHERE id IN (SELECT id FROM contacts WHERE client_id = '{client_id}' \
           AND converted IS NULL ORDER BY id LIMIT 1000)"
    );
    for (run, before) in [
        ("first scoring: every contact new", None),
        ("nothing changes", None),
        ("1% of contacts changed, same model", Some(&some_change)),
        (
            "1,000 new outcomes: model refitted, every probability changes",
            Some(&refit),
        ),
    ] {
        if let Some(sql) = before {
            db.execute_unprepared(sql).await.unwrap();
        }
        let t0 = Instant::now();
        app.services
            .recompute_client_contacts(agency, client_id)
            .await
            .unwrap();
        println!(
            "rescoring {n} contacts, 10 rules, 50-feature model ({run}): {:.0} ms",
            ms(t0.elapsed())
        );
    }
    // Each fresh set queued the one it replaced: the sweeper's purge.
    let t0 = Instant::now();
    let purged = app.services.purge_score_sets(10).await.unwrap();
    println!(
        "sweeper purging {purged} replaced score sets of {n} rows each: {:.0} ms",
        ms(t0.elapsed())
    );
    let m = app
        .get(&format!("/api/v1/clients/{client}/scoring/model"), &t.token)
        .await;
    println!(
        "model: {} labelled, {} weights, {} Newton iterations",
        m.body["labelled"],
        m.body["weights"].as_array().map_or(0, Vec::len),
        m.body["iterations"]
    );
    let hot = entity::scored_contact::Entity::find()
        .filter(entity::scored_contact::Column::ClientId.eq(client_id))
        .filter(entity::scored_contact::Column::Tier.eq("hot"))
        .count(db)
        .await
        .unwrap();
    println!("hot contacts: {hot}");
}

async fn tick(app: &TestApp, n: usize) {
    let t = app.signup("Tick").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let seg = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    let chain = app
        .create(
            &format!("/api/v1/clients/{client}/chains"),
            &t.token,
            json!({"name": "C", "kind": "segment", "segment_id": seg, "steps": [
                {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 0}]}),
        )
        .await;
    let db = &app.services.db;
    // All but 500 due over the next year; 500 due a minute ago.
    db.execute_unprepared(&format!(
        "INSERT INTO chain_enrolments (id, agency_id, client_id, chain_id, contact_id, trigger_key, \
         status, exit_reason, step, next_at, enrolled_at, updated_at) \
         SELECT gen_random_uuid(), '{}', '{client}', '{chain}', gen_random_uuid(), 'segment', 'active', \
         NULL, 0, CASE WHEN i <= 500 THEN now() - interval '1 minute' \
         ELSE now() + (1 + i % 525600) * interval '1 minute' END, now(), now() \
         FROM generate_series(1, {n}) AS i",
        t.agency_id
    ))
    .await
    .unwrap();
    db.execute_unprepared("ANALYZE chain_enrolments")
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut times = Vec::new();
    for _ in 0..21 {
        let t0 = Instant::now();
        let due = service::chains::tick::due_enrolments(db, now, 500)
            .await
            .unwrap();
        times.push(ms(t0.elapsed()));
        assert_eq!(due.len(), 500);
    }
    println!(
        "finding 500 due steps among {n} enrolments: median {:.2} ms, worst {:.2} ms",
        pct(&times, 0.5),
        pct(&times, 1.0)
    );
    let t0 = Instant::now();
    let handled = app.services.chain_tick(now).await.unwrap();
    println!(
        "one tick handling {handled} due enrolments (contacts erased: each ends): {:.0} ms",
        ms(t0.elapsed())
    );
    let mut idle = Vec::new();
    for _ in 0..21 {
        let t0 = Instant::now();
        assert_eq!(app.services.chain_tick(now).await.unwrap(), 0);
        idle.push(ms(t0.elapsed()));
    }
    println!("a tick with nothing due: median {:.2} ms", pct(&idle, 0.5));
}

async fn wait_sent(app: &TestApp, kind: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let sent = entity::email_delivery::Entity::find()
            .filter(entity::email_delivery::Column::Kind.eq(kind))
            .filter(entity::email_delivery::Column::Status.eq("sent"))
            .count(&app.services.db)
            .await
            .unwrap();
        if sent >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{kind}: only {sent} of {n} sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn emails(n: usize) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(Mode::Postgres, |s| s.smtp_url = Some(sink.url())).await;
    let news = newsletter(&app, n, "<p>Hello {{ subscriber.name }}!</p>").await;
    let t0 = Instant::now();
    news.send(&app).await;
    wait_sent(&app, "newsletter", n as u64).await;
    let news_secs = t0.elapsed().as_secs_f64();

    let t = &news.owner;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Chains", "locale": "en", "timezone": "UTC"}),
        )
        .await;
    let mut csv = String::from("email,name,vip\n");
    for i in 0..n {
        csv.push_str(&format!("k{i:05}@example.com,Contact {i},yes\n"));
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{client}/contacts/import"),
            Some(&t.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.call(
        Method::PUT,
        &format!("/api/v1/clients/{client}/scoring"),
        Some(&t.token),
        Some(json!({"rules": [{"name": "VIP", "points": 100, "when": {"kind": "attr_equals", "key": "vip", "value": "yes"}}]})),
    )
    .await;
    let seg = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Hot", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}),
        )
        .await;
    // Scored before the chain exists, so the timing is enrolment and sending.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = app
            .get(&format!("/api/v1/segments/{seg}/contact-count"), &t.token)
            .await;
        if r.body["contacts"] == n {
            break;
        }
        assert!(Instant::now() < deadline, "never scored: {}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t0 = Instant::now();
    app.create(
        &format!("/api/v1/clients/{client}/chains"),
        &t.token,
        json!({"name": "Welcome", "kind": "segment", "segment_id": seg, "window_start": "00:00", "window_end": "23:59",
               "steps": [{"subject": "Welcome {{ contact.name }}", "html": "<p>Hello {{ contact.name }}!</p>", "text": "Hello!", "delay_minutes": 0}]}),
    )
    .await;
    wait_sent(&app, "chain", n as u64).await;
    let chain_secs = t0.elapsed().as_secs_f64();
    let (nr, cr) = (n as f64 / news_secs, n as f64 / chain_secs);
    println!(
        "{n} newsletter emails: {news_secs:.1} s ({nr:.0}/s); {n} chain emails (enrolment included): \
         {chain_secs:.1} s ({cr:.0}/s) = {:.0}% of the newsletter rate",
        cr / nr * 100.0
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    if !a.only_emails {
        let app = spawn_with(Mode::Postgres, |s| s.run_worker = false).await;
        rescoring(&app, a.contacts).await;
        tick(&app, a.contacts).await;
    }
    if !a.skip_emails {
        emails(a.emails).await;
    }
    println!("peak memory {:.0} MiB", peak_rss_mib());
}
