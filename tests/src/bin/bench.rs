//! Ingest and read throughput of the whole application, spawned in-process
//! with the black-box harness (issue 2; see docs/performance.md).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench -- --mode both
//! ```
//!
//! For each mode: sign up, build the panel world, then
//! 1. read throughput: a closed loop of 16 clients on `GET /healthz`, then on
//!    `GET /api/v1/clients` (owner JWT), each 1 s warm-up and 3 s measured,
//!    three rounds alternating the two; the round with the median ratio is
//!    reported, with every round's ratio;
//! 2. ingest throughput: three 100k-row NDJSON and three 100k-row CSV imports
//!    (fresh external ids each time), timed around the HTTP call;
//! 3. a rough breakdown of one import: upload, parse, and the rest (storing;
//!    on PostgreSQL parsing overlaps it).
//!
//! Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use service::domain::answers::AnswerSchema;
use service::domain::import::{parse_csv, parse_ndjson};
use tests::{Mode, Panel, Tenant, TestApp};
use uuid::Uuid;

const CONCURRENCY: usize = 16;
const READ_SECS: u64 = 3;
/// A bound on requests per loop that a 3 s loop does not reach here.
const READ_MAX: usize = 2_000_000;
const READ_ROUNDS: usize = 3;
const WARMUP_SECS: u64 = 1;
const INGEST_RUNS: usize = 3;

struct Args {
    modes: Vec<Mode>,
    mode_arg: String,
    rows: usize,
}

fn parse_args() -> Args {
    let mut mode_arg = "both".to_owned();
    let mut rows = 100_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).unwrap_or_default();
        match key.as_str() {
            "--mode" => mode_arg = value(),
            "--rows" => {
                rows = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--rows takes a number"));
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let modes = match mode_arg.as_str() {
        "sqlite" => vec![Mode::Sqlite],
        "postgres" => vec![Mode::Postgres],
        "both" => vec![Mode::Sqlite, Mode::Postgres],
        _ => usage("--mode is sqlite, postgres or both"),
    };
    if rows == 0 {
        usage("--rows must be positive");
    }
    Args {
        modes,
        mode_arg,
        rows,
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("bench: {msg}");
    }
    eprintln!("usage: bench [--mode sqlite|postgres|both] [--rows N]");
    std::process::exit(2)
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Sqlite => "SQLite",
        Mode::Postgres => "PostgreSQL",
    }
}

/// Thousands separators: 123456 → "123,456".
fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// CPU seconds used so far by this process (app and load generator), by
/// every `postgres` process, and by the whole machine (Linux `/proc`,
/// 100 ticks/s), so that a run disturbed by other work shows it.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    own: f64,
    pg: f64,
    machine: f64,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            own: self.own - before.own,
            pg: self.pg - before.pg,
            machine: self.machine - before.machine,
        }
    }

    fn add(&mut self, d: Cpu) {
        self.own += d.own;
        self.pg += d.pg;
        self.machine += d.machine;
    }

    /// As shares of `wall` (100% = one core busy).
    fn share(self, wall: f64) -> String {
        if wall < 0.2 {
            // Too short for 10 ms ticks to mean anything.
            return "CPU split: too short to tell".into();
        }
        let other = (self.machine - self.own - self.pg).max(0.0);
        format!(
            "app process {:.0}%, postgres {:.0}%, other processes {:.0}% of one core",
            100.0 * self.own / wall,
            100.0 * self.pg / wall,
            100.0 * other / wall
        )
    }
}

fn cpu_now() -> Cpu {
    fn ticks(path: &std::path::Path) -> Option<(String, u64)> {
        let s = std::fs::read_to_string(path).ok()?;
        let open = s.find('(')?;
        let close = s.rfind(')')?;
        let comm = s[open + 1..close].to_owned();
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        // After the command: state, ppid, … utime is the 12th, stime the 13th.
        let t = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some((comm, t))
    }
    let own = ticks(std::path::Path::new("/proc/self/stat")).map_or(0, |(_, t)| t);
    let mut pg = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some((comm, t)) = ticks(&e.path().join("stat"))
                && comm == "postgres"
            {
                pg += t;
            }
        }
    }
    // First line of /proc/stat: user nice system idle iowait irq softirq steal …
    let machine: u64 = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<u64> = s
                .lines()
                .next()?
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            Some(
                f.iter()
                    .enumerate()
                    .filter(|(i, _)| !matches!(i, 3 | 4) && *i < 8)
                    .map(|(_, v)| v)
                    .sum(),
            )
        })
        .unwrap_or(0);
    Cpu {
        own: own as f64 / 100.0,
        pg: pg as f64 / 100.0,
        machine: machine as f64 / 100.0,
    }
}

/// CPU used between two `cpu_now()` readings, as a share of `wall`.
fn cpu_share(before: Cpu, after: Cpu, wall: f64) -> String {
    after.since(before).share(wall)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------- reads ---

struct LoopStats {
    ok: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl LoopStats {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A closed loop: `conc` clients, each sending its next request when the
/// previous one has been read, until `dur` has passed or `max` requests have
/// been issued.
async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    auth: Option<&HeaderValue>,
    conc: usize,
    dur: Duration,
    max: usize,
) -> LoopStats {
    let issued = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let http = http.clone();
        let url = url.to_owned();
        let auth = auth.cloned();
        let issued = issued.clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(max / conc + 16);
            let mut errors = 0usize;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let t0 = Instant::now();
                let mut req = http.get(&url);
                if let Some(a) = &auth {
                    req = req.header(AUTHORIZATION, a.clone());
                }
                match req.send().await {
                    Ok(r) => {
                        let ok = r.status() == StatusCode::OK;
                        let body = r.bytes().await;
                        if ok && body.is_ok() {
                            lat.push(t0.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (lat, e) = r.expect("load task");
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    LoopStats {
        ok: all.len(),
        errors,
        elapsed,
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
    }
}

async fn read_bench(http: &reqwest::Client, url: &str, auth: Option<&HeaderValue>) -> LoopStats {
    let _ = closed_loop(
        http,
        url,
        auth,
        CONCURRENCY,
        Duration::from_secs(WARMUP_SECS),
        READ_MAX,
    )
    .await;
    closed_loop(
        http,
        url,
        auth,
        CONCURRENCY,
        Duration::from_secs(READ_SECS),
        READ_MAX,
    )
    .await
}

/// Where one authenticated read goes, roughly: the service calls behind
/// `GET /api/v1/clients`, one at a time in this process (no HTTP), against a
/// bare `SELECT 1` round trip. Bounded: 2,000 calls or 5 s per probe.
async fn read_breakdown(app: &TestApp, token: &str) -> String {
    const N: usize = 2_000;
    let services = &app.services;
    let backend = services.db.get_database_backend();
    let ctx = services.authenticate(token).await.expect("the owner token");
    let mut parts = Vec::new();
    for probe in [
        "SELECT 1",
        "authenticate (JWT + membership)",
        "list_clients (service)",
    ] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (c0, t0) = (cpu_now(), Instant::now());
        let mut n = 0;
        while n < N && Instant::now() < deadline {
            match probe {
                "SELECT 1" => {
                    services
                        .db
                        .query_one_raw(Statement::from_string(backend, "SELECT 1"))
                        .await
                        .expect("SELECT 1");
                }
                "authenticate (JWT + membership)" => {
                    services.authenticate(token).await.expect("authenticate");
                }
                _ => {
                    services
                        .list_clients(&ctx, false, service::page::PageParams::default())
                        .await
                        .expect("list_clients");
                }
            }
            n += 1;
        }
        let wall = t0.elapsed().as_secs_f64();
        parts.push(format!(
            "{probe} {:.0} µs/call ({})",
            wall * 1e6 / n as f64,
            cpu_share(c0, cpu_now(), wall)
        ));
    }
    parts.join("; ")
}

// --------------------------------------------------------------- ingest ---

struct IngestStats {
    ndjson: Vec<f64>,
    csv: Vec<f64>,
    breakdown: String,
    /// PostgreSQL's own COPY of the same stored rows, responses/s per run:
    /// text format (what `psql \copy` sends), and binary (what imports send).
    copy: Vec<f64>,
    copy_binary: Vec<f64>,
}

async fn import(
    app: &TestApp,
    key: &str,
    q: &str,
    ct: &str,
    body: String,
    rows: usize,
) -> Duration {
    let path = format!("/api/v1/questionnaires/{q}/responses/import");
    let t0 = Instant::now();
    let r = app.raw(Method::POST, &path, Some(key), ct, body).await;
    let took = t0.elapsed();
    assert_eq!(r.status, StatusCode::CREATED, "import ({ct}): {}", r.text);
    assert_eq!(
        r.body["inserted"].as_u64(),
        Some(rows as u64),
        "import ({ct}) did not insert every row: {}",
        r.text
    );
    took
}

async fn ingest_bench(
    app: &TestApp,
    t: &Tenant,
    key: &str,
    nd_q: &str,
    csv_q: &str,
    rows: usize,
) -> IngestStats {
    // Untimed warm-up: first connections, prepared statements, caches.
    import(
        app,
        key,
        nd_q,
        "application/x-ndjson",
        tests::ndjson_rows("warm-", 1_000),
        1_000,
    )
    .await;
    import(
        app,
        key,
        csv_q,
        "text/csv",
        tests::csv_rows("warm-", 1_000),
        1_000,
    )
    .await;

    let mut ndjson = Vec::new();
    let mut csv = Vec::new();
    let mut nd_times = Vec::new();
    let (mut nd_cpu, mut csv_cpu) = ((Cpu::default(), 0.0), (Cpu::default(), 0.0));
    let add = |acc: &mut (Cpu, f64), b: Cpu, a: Cpu, wall: f64| {
        acc.0.add(a.since(b));
        acc.1 += wall;
    };
    for run in 1..=INGEST_RUNS {
        let body = tests::ndjson_rows(&format!("nd{run}-"), rows);
        let mb = body.len() as f64 / 1e6;
        let c0 = cpu_now();
        let took = import(app, key, nd_q, "application/x-ndjson", body, rows).await;
        add(&mut nd_cpu, c0, cpu_now(), took.as_secs_f64());
        let rate = rows as f64 / took.as_secs_f64();
        println!(
            "  ingest NDJSON run {run}: {rows} rows ({mb:.1} MB) in {} ms = {} responses/s",
            ms(took),
            thousands(rate)
        );
        ndjson.push(rate);
        nd_times.push(took.as_secs_f64());

        let body = tests::csv_rows(&format!("csv{run}-"), rows);
        let mb = body.len() as f64 / 1e6;
        let c0 = cpu_now();
        let took = import(app, key, csv_q, "text/csv", body, rows).await;
        add(&mut csv_cpu, c0, cpu_now(), took.as_secs_f64());
        let rate = rows as f64 / took.as_secs_f64();
        println!(
            "  ingest CSV    run {run}: {rows} rows ({mb:.1} MB) in {} ms = {} responses/s",
            ms(took),
            thousands(rate)
        );
        csv.push(rate);
    }

    // Where the time of one NDJSON import goes, roughly.
    // a) Upload + auth + body read: the same body with a refused Content-Type
    //    (the handler rejects it only after the extractors read the body).
    let body = tests::ndjson_rows("probe-", rows);
    let path = format!("/api/v1/questionnaires/{nd_q}/responses/import");
    let t0 = Instant::now();
    let r = app
        .raw(Method::POST, &path, Some(key), "text/plain", body.clone())
        .await;
    let upload = t0.elapsed();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // b) Parsing and validation alone, in this process, like the server's
    //    spawn_blocking does.
    let agency: Uuid = t.agency_id.parse().unwrap();
    let qid: Uuid = nd_q.parse().unwrap();
    let version = app
        .get(&format!("/api/v1/questionnaires/{nd_q}"), &t.token)
        .await
        .body["version"]
        .as_i64()
        .unwrap_or(1) as i32;
    let questions = service::questionnaires::load_questions(&app.services.db, agency, qid, version)
        .await
        .expect("questions");
    let schema = AnswerSchema::new(&questions);
    let t0 = Instant::now();
    let parsed = parse_ndjson(&schema, body.as_bytes()).unwrap_or_default();
    let parse = t0.elapsed();
    assert_eq!(parsed.len(), rows);
    drop(parsed);
    let csv_body = tests::csv_rows("probe-", rows);
    let t0 = Instant::now();
    let parsed = parse_csv(&schema, csv_body.as_bytes()).unwrap_or_default();
    let parse_csv_t = t0.elapsed();
    assert_eq!(parsed.len(), rows);
    drop(parsed);
    // c) Re-sending a stored batch: upload + parse + conflict checks, no new rows.
    let dup = tests::ndjson_rows("nd1-", rows);
    let c0 = cpu_now();
    let t0 = Instant::now();
    let r = app
        .raw(Method::POST, &path, Some(key), "application/x-ndjson", dup)
        .await;
    let resend = t0.elapsed();
    let resend_cpu = cpu_share(c0, cpu_now(), resend.as_secs_f64());
    assert_eq!(
        r.body["duplicates"].as_u64(),
        Some(rows as u64),
        "{}",
        r.text
    );
    let total = median(&nd_times);
    // On PostgreSQL a bulk body is COPYed while it is parsed, so parsing is
    // not a term of the sum there; on SQLite it precedes the inserts.
    let rest = (total - upload.as_secs_f64()).max(0.0);
    let breakdown = format!(
        "NDJSON median {:.0} ms ≈ upload+auth {:.0} ms + parse, validate and store ≈{:.0} ms \
         (parse/validate alone, in-process on the parallel parser: {:.0} ms; PostgreSQL overlaps it with the COPY); \
         re-sending a stored batch (all duplicates) {:.0} ms ({resend_cpu}); CSV parse/validate {:.0} ms; \
         CPU during the timed imports: NDJSON {}, CSV {}",
        total * 1000.0,
        upload.as_secs_f64() * 1000.0,
        rest * 1000.0,
        parse.as_secs_f64() * 1000.0,
        resend.as_secs_f64() * 1000.0,
        parse_csv_t.as_secs_f64() * 1000.0,
        nd_cpu.0.share(nd_cpu.1),
        csv_cpu.0.share(csv_cpu.1),
    );
    println!("  breakdown: {breakdown}");
    IngestStats {
        ndjson,
        csv,
        breakdown,
        copy: Vec::new(),
        copy_binary: Vec::new(),
    }
}

// ----------------------------------------------------------------- main ---

struct ModeResult {
    mode: Mode,
    engine: String,
    healthz: LoopStats,
    clients: LoopStats,
    reads: String,
    ingest: IngestStats,
}

async fn engine_version(app: &TestApp) -> String {
    let (backend, sql, label) = match app.mode {
        Mode::Sqlite => (DbBackend::Sqlite, "SELECT sqlite_version()", "SQLite"),
        Mode::Postgres => (DbBackend::Postgres, "SHOW server_version", "PostgreSQL"),
    };
    let v = app
        .services
        .db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_else(|| "?".into());
    format!("{label} {v}")
}

async fn run_mode(mode: Mode, rows: usize, http: &reqwest::Client) -> ModeResult {
    println!("== {} ==", mode_name(mode));
    // The worker is off so that recomputing summaries after each import does
    // not compete with the measured requests; ingest stores rows and queues
    // the recompute, which is what the request pays for.
    let app = tests::spawn_with(mode, |s| s.run_worker = false).await;
    let engine = engine_version(&app).await;
    let t = app.signup("Bench Agency").await;
    let p: Panel = tests::panel(&app, &t).await;
    // A realistic first page: ten clients in all.
    for i in 1..10 {
        app.create(
            "/api/v1/clients",
            &t.token,
            serde_json::json!({"name": format!("Client {i}"), "timezone": "Europe/Moscow", "locale": "en"}),
        )
        .await;
    }
    let csv_q = app
        .create(
            &format!("/api/v1/clients/{}/questionnaires", p.client),
            &t.token,
            tests::panel_questions(&p.factors[0], &p.factors[1], &p.touchpoint),
        )
        .await;
    let key = app.api_key(&t.token, &["ingest"]).await;

    // Reads first: the bulk inserts leave PostgreSQL with autovacuum and
    // checkpoint work that would otherwise run during the read loops.
    println!("  load average before: {}", loadavg());
    let bearer = HeaderValue::from_str(&format!("Bearer {}", t.token)).unwrap();
    let mut rounds = Vec::new();
    for _ in 0..READ_ROUNDS {
        let (c0, w0) = (cpu_now(), Instant::now());
        let health = read_bench(http, &app.url("/healthz"), None).await;
        let health_cpu = cpu_share(c0, cpu_now(), w0.elapsed().as_secs_f64());
        let (c0, w0) = (cpu_now(), Instant::now());
        let clients = read_bench(http, &app.url("/api/v1/clients"), Some(&bearer)).await;
        let clients_cpu = cpu_share(c0, cpu_now(), w0.elapsed().as_secs_f64());
        for (name, s, cpu) in [
            ("GET /healthz", &health, &health_cpu),
            ("GET /api/v1/clients", &clients, &clients_cpu),
        ] {
            println!(
                "  {name:<20} {} req/s  p50 {} ms  p99 {} ms  ({} ok, {} errors, {:.2} s; CPU: {cpu})",
                thousands(s.rps()),
                ms(s.p50),
                ms(s.p99),
                s.ok,
                s.errors,
                s.elapsed.as_secs_f64()
            );
        }
        rounds.push((100.0 * clients.rps() / health.rps(), health, clients));
    }
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ratios: Vec<String> = rounds.iter().map(|r| format!("{:.0}%", r.0)).collect();
    println!(
        "  clients/healthz per round, ascending: {}; median round reported",
        ratios.join(", ")
    );
    let (_, health, clients) = rounds.swap_remove(READ_ROUNDS / 2);

    let reads = read_breakdown(&app, &t.token).await;
    println!("  read breakdown (sequential, in-process): {reads}");

    let mut ingest = ingest_bench(&app, &t, &key, &p.questionnaire, &csv_q, rows).await;
    if mode == Mode::Postgres {
        ingest.copy = copy_baseline(&app, &p.questionnaire, rows, false).await;
        ingest.copy_binary = copy_baseline(&app, &p.questionnaire, rows, true).await;
        println!(
            "  PostgreSQL COPY of {rows} stored rows into a copy of the table (same indexes): \
             text median {} / best {} rows/s, binary median {} / best {} rows/s",
            thousands(median(&ingest.copy)),
            thousands(best(&ingest.copy)),
            thousands(median(&ingest.copy_binary)),
            thousands(best(&ingest.copy_binary))
        );
    }

    if mode == Mode::Postgres {
        drop_database(&app).await;
    }
    ModeResult {
        mode,
        engine,
        healthz: health,
        clients,
        reads,
        ingest,
    }
}

/// The reference the ingest target is set against: PostgreSQL's own COPY
/// of the rows an import stored (the same answers documents), into an empty
/// table like `responses` with all its indexes, three times; in text format
/// (`psql \copy`) or in binary (what an import sends).
async fn copy_baseline(app: &TestApp, questionnaire: &str, rows: usize, binary: bool) -> Vec<f64> {
    let format = if binary { " WITH (FORMAT binary)" } else { "" };
    let q = Uuid::parse_str(questionnaire).unwrap();
    let pool = app.services.db.get_postgres_connection_pool();
    let mut conn = pool.acquire().await.unwrap();
    sea_orm::sqlx::query("CREATE TABLE copy_baseline (LIKE responses INCLUDING ALL)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut data = Vec::new();
    {
        use futures::StreamExt;
        let mut out = conn
            .copy_out_raw(&format!(
                "COPY (SELECT * FROM responses WHERE questionnaire_id = '{q}' LIMIT {rows}) TO STDOUT{format}"
            ))
            .await
            .unwrap();
        while let Some(chunk) = out.next().await {
            data.extend_from_slice(&chunk.unwrap());
        }
    }
    let mut rates = Vec::new();
    for _ in 0..INGEST_RUNS {
        sea_orm::sqlx::query("TRUNCATE copy_baseline")
            .execute(&mut *conn)
            .await
            .unwrap();
        let t0 = Instant::now();
        let mut copy = conn
            .copy_in_raw(&format!("COPY copy_baseline FROM STDIN{format}"))
            .await
            .unwrap();
        copy.send(data.as_slice()).await.unwrap();
        let n = copy.finish().await.unwrap();
        rates.push(n as f64 / t0.elapsed().as_secs_f64());
    }
    sea_orm::sqlx::query("DROP TABLE copy_baseline")
        .execute(&mut *conn)
        .await
        .unwrap();
    rates
}

/// The harness leaves its databases behind; a bench database holds ~600k
/// rows, so it goes once measured.
async fn drop_database(app: &TestApp) {
    let Some(name) = app
        .settings
        .database_url
        .as_deref()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(_, n)| n.to_owned())
    else {
        return;
    };
    if !name.starts_with("gp_test_") {
        return;
    }
    if let Ok(admin) = Database::connect(tests::pg_admin_url()).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    // The server's usual logging (as `serve` sets it up, so its cost is
    // measured too), but on stderr: stdout stays the report. The harness's
    // own `telemetry::init` then finds a subscriber and leaves it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn,apalis=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "Growthpoint bench: modes {}, {} rows per import, {nproc} CPUs, {profile} build",
        args.mode_arg, args.rows
    );
    if profile == "debug" {
        println!("  (debug build: figures are not representative; use --release)");
    }
    // One shared client with keep-alive for the read loops.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut results = Vec::new();
    for mode in &args.modes {
        results.push(run_mode(*mode, args.rows, &http).await);
    }

    let engines: Vec<&str> = results.iter().map(|r| r.engine.as_str()).collect();
    let rows_flag = if args.rows == 100_000 {
        String::new()
    } else {
        format!(" --rows {}", args.rows)
    };
    println!();
    println!("---- Markdown for docs/performance.md ----");
    println!();
    println!(
        "Machine: {nproc} CPUs (`nproc`), {}; {}; job queue in SQLite / Redis, worker off; \
         {profile} build; app and load generator in one process; load average {} at the end.",
        cpu_model(),
        engines.join(", "),
        loadavg()
    );
    println!();
    println!(
        "Command: `CARGO_TARGET_DIR=/work/target-bench cargo run --release -p tests --bin bench -- --mode {}{rows_flag}`",
        args.mode_arg
    );
    println!();
    println!(
        "| Mode | NDJSON import, responses/s (median / best of {INGEST_RUNS}) | CSV import, responses/s (median / best of {INGEST_RUNS}) | PostgreSQL text COPY of the same rows, rows/s (median / best) | binary COPY, rows/s (median / best) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in &results {
        let rate = |runs: &[f64]| {
            if runs.is_empty() {
                "—".to_owned()
            } else {
                format!("{} / {}", thousands(median(runs)), thousands(best(runs)))
            }
        };
        let (copy, copy_binary) = (rate(&r.ingest.copy), rate(&r.ingest.copy_binary));
        println!(
            "| {} | {} / {} | {} / {} | {copy} | {copy_binary} |",
            mode_name(r.mode),
            thousands(median(&r.ingest.ndjson)),
            thousands(best(&r.ingest.ndjson)),
            thousands(median(&r.ingest.csv)),
            thousands(best(&r.ingest.csv)),
        );
    }
    println!();
    println!(
        "| Mode | GET /healthz req/s | p50 / p99 ms | GET /api/v1/clients req/s | p50 / p99 ms | clients / healthz |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} / {} | {} | {} / {} | {:.0}% |",
            mode_name(r.mode),
            thousands(r.healthz.rps()),
            ms(r.healthz.p50),
            ms(r.healthz.p99),
            thousands(r.clients.rps()),
            ms(r.clients.p50),
            ms(r.clients.p99),
            100.0 * r.clients.rps() / r.healthz.rps(),
        );
    }
    println!();
    for r in &results {
        println!(
            "- {} ingest breakdown: {}",
            mode_name(r.mode),
            r.ingest.breakdown
        );
        println!(
            "- {} read breakdown (sequential, in-process): {}",
            mode_name(r.mode),
            r.reads
        );
    }
    let errors: usize = results
        .iter()
        .map(|r| r.healthz.errors + r.clients.errors)
        .sum();
    if errors > 0 {
        println!("- {errors} read requests failed (not counted in req/s)");
    }
}
