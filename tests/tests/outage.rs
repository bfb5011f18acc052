//! A PostgreSQL outage, for real: the test starts a private cluster, puts
//! the application (API and worker, with the shared Redis queue) on it,
//! stops the cluster for 20 s while requests and imports keep coming, and
//! starts it again. During the outage every request is answered 503
//! `database_unavailable` with `Retry-After`, fast; after it, every derived
//! result catches up with the last data version within 10 s, and what was
//! accepted is stored exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, Resp, TempDir, Tenant, TestApp, ndjson_rows, panel, spawn_with};

const OUTAGE: Duration = Duration::from_secs(20);
const ANSWER_WITHIN: Duration = Duration::from_millis(1_500);
const CATCH_UP_WITHIN: Duration = Duration::from_secs(10);

/// A PostgreSQL cluster of the test's own, run as the `postgres` user.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("pg_ctl").exists())
            .expect(
                "the outage test needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin: \
                 apt-get install postgresql); it does not skip",
            );
        let dir = std::env::temp_dir().join(format!("gp-outage-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = TempDir(dir);
        let data = dir.0.join("data");
        // initdb refuses root: the cluster belongs to `postgres`.
        as_postgres("chown", &[&path(&dir.0)], true);
        let port = free_port();
        let c = Cluster {
            bin,
            data,
            port,
            _dir: dir,
        };
        c.pg(
            "initdb",
            &[
                "-D",
                &path(&c.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        c.up();
        c
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        as_postgres(&path(&self.bin.join(tool)), args, false);
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path(self.data.parent().unwrap())
        );
        let log = path(&self.data.parent().unwrap().join("log"));
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &path(&self.data),
                "-o",
                &opts,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn down(&self) {
        self.pg(
            "pg_ctl",
            &["-D", &path(&self.data), "-m", "fast", "-w", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &path(&self.data), "-m", "immediate", "stop"])
            .output();
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Runs a command as `postgres` (as root, through runuser); `chown`
/// hands a path to that user instead.
fn as_postgres(cmd: &str, args: &[&str], chown: bool) {
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    let out = if chown {
        if !root {
            return;
        }
        Command::new("chown")
            .arg("postgres:postgres")
            .args(args)
            .output()
    } else if root {
        Command::new("runuser")
            .args(["-u", "postgres", "--", cmd])
            .args(args)
            .output()
    } else {
        Command::new(cmd).args(args).output()
    }
    .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request of each kind the outage must answer, by round.
async fn request(app: &TestApp, t: &Tenant, q: &str, round: usize) -> (&'static str, Resp) {
    match round % 4 {
        0 => (
            "GET summary",
            app.get(&format!("/api/v1/questionnaires/{q}/summary"), &t.token)
                .await,
        ),
        1 => (
            "POST response",
            app.post(
                &format!("/api/v1/questionnaires/{q}/responses"),
                &t.token,
                json!({"external_id": format!("during-{round}"), "answers": {"city": "msk", "nps": 9}}),
            )
            .await,
        ),
        2 => (
            "POST import",
            app.raw(
                Method::POST,
                &format!("/api/v1/questionnaires/{q}/responses/import"),
                Some(&t.token),
                "application/x-ndjson",
                ndjson_rows(&format!("during-import-{round}-"), 50),
            )
            .await,
        ),
        _ => (
            "GraphQL",
            app.graphql(
                Some(&t.token),
                "query($id: ID!) { questionnaireSummary(id: $id) { dataVersion } }",
                json!({"id": q}),
            )
            .await,
        ),
    }
}

/// Every external id stored for the questionnaire, with how often.
async fn stored_ids(app: &TestApp, t: &Tenant, q: &str) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/questionnaires/{q}/responses?limit=200");
        if let Some(c) = &after {
            url.push_str(&format!("&after={c}"));
        }
        let page = app.get(&url, &t.token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            let id = item["external_id"].as_str().unwrap_or("").to_owned();
            *ids.entry(id).or_insert(0) += 1;
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_owned()),
            None => return ids,
        }
    }
}

/// Waits until the summary, the stored panel and the hypothesis results
/// reflect `version` and `n` responses, failing 10 s after `since`.
async fn catch_up(
    app: &TestApp,
    t: &Tenant,
    q: &str,
    client: &str,
    version: i64,
    n: usize,
    since: Instant,
) {
    loop {
        let s = app
            .get(&format!("/api/v1/questionnaires/{q}/summary"), &t.token)
            .await;
        let panel = app
            .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
            .await;
        let h = app
            .get(
                &format!("/api/v1/clients/{client}/hypotheses/results"),
                &t.token,
            )
            .await;
        let done = s.body["data_version"] == version
            && s.body["status"] == "fresh"
            && panel.body["data_version"] == version
            && h.body["status"] == "fresh";
        if done {
            assert_eq!(s.body["summary"]["n"], n, "{}", s.text);
            assert_eq!(panel.body["panel"]["n"], n);
            let r = &h.body["items"][0]["result"];
            assert_eq!(
                r["n1"].as_u64().unwrap() + r["n2"].as_u64().unwrap(),
                n as u64,
                "{}",
                h.text
            );
            return;
        }
        assert!(
            since.elapsed() < CATCH_UP_WITHIN,
            "not caught up with version {version} {:?} after the restart: summary {} panel {} hypotheses {}",
            since.elapsed(),
            s.text,
            panel.body["data_version"],
            h.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_answered_503_and_results_catch_up_after_it() {
    let cluster = Cluster::start();
    let admin = sea_orm::Database::connect(cluster.url("postgres"))
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&admin, "CREATE DATABASE gp")
        .await
        .unwrap();
    drop(admin);
    let url = cluster.url("gp");
    let app = spawn_with(Mode::Postgres, |s| s.database_url = Some(url)).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let q = p.questionnaire.as_str();
    let seg = json!({"conditions": [{"question": "city", "values": ["msk"]}]});
    app.create(
        &format!("/api/v1/clients/{}/hypotheses", p.client),
        &t.token,
        json!({"name": "Moscow is more loyal", "questionnaire_id": q, "segment": seg,
               "metric": {"kind": "nps"}, "direction": "greater"}),
    )
    .await;
    // What is accepted before, during and after: external id → data version.
    let mut accepted: HashMap<String, i64> = HashMap::new();
    let before = app
        .import_ndjson(&t.token, q, ndjson_rows("before-", 200))
        .await;
    for i in 0..200 {
        accepted.insert(
            format!("before-{i}"),
            before["data_version"].as_i64().unwrap(),
        );
    }
    // The import's recomputes are still running (or queued) when the
    // database goes: they must not be given up.
    cluster.down();
    let stopped = Instant::now();
    let mut rounds = 0usize;
    let mut slowest = Duration::ZERO;
    while stopped.elapsed() < OUTAGE {
        let sent = Instant::now();
        let (what, r) = request(&app, &t, q, rounds).await;
        let took = sent.elapsed();
        slowest = slowest.max(took);
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} {:?} into the outage: {}",
            stopped.elapsed(),
            r.text
        );
        assert_eq!(r.body["code"], "database_unavailable", "{what}: {}", r.text);
        assert!(
            r.headers.get("retry-after").is_some(),
            "{what}: no Retry-After"
        );
        assert!(took < ANSWER_WITHIN, "{what} took {took:?}");
        rounds += 1;
    }
    assert!(rounds >= 40, "only {rounds} requests in the outage");
    let ready = app.get("/readyz", &t.token).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/healthz", &t.token).await.status, StatusCode::OK);
    // The documents need no database: they answer too.
    for doc in [
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs/assets/swagger-ui-bundle.js",
        "/graphql",
        "/graphql/assets/graphiql.min.js",
    ] {
        let r = app.http.get(app.url(doc)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{doc} during the outage");
    }
    eprintln!("{rounds} requests during the outage, slowest answered in {slowest:?}");

    cluster.up();
    let restarted = Instant::now();
    // Without any new data, what was pending when the database went is
    // computed once it is back.
    let v = before["data_version"].as_i64().unwrap();
    catch_up(&app, &t, q, &p.client, v, accepted.len(), restarted).await;
    eprintln!(
        "the interrupted recompute done {:?} after the restart",
        restarted.elapsed()
    );
    // Posts retried until the API takes them again, then a few more.
    let mut last = 0i64;
    for i in 0..20 {
        loop {
            let r = app
                .post(
                    &format!("/api/v1/questionnaires/{q}/responses"),
                    &t.token,
                    json!({"external_id": format!("after-{i}"), "answers": {"city": "spb", "nps": 3}}),
                )
                .await;
            if r.status == StatusCode::CREATED {
                last = r.body["data_version"].as_i64().unwrap();
                accepted.insert(format!("after-{i}"), last);
                break;
            }
            assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
            assert!(
                restarted.elapsed() < CATCH_UP_WITHIN,
                "the API never came back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every derived result reaches the last data version within 10 s.
    catch_up(&app, &t, q, &p.client, last, accepted.len(), restarted).await;
    eprintln!("caught up {:?} after the restart", restarted.elapsed());
    // Nothing accepted is lost or stored twice; nothing refused is stored.
    let stored = stored_ids(&app, &t, q).await;
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let lost: Vec<_> = accepted
        .keys()
        .filter(|k| !stored.contains_key(*k))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let extra: Vec<_> = stored
        .keys()
        .filter(|k| !accepted.contains_key(*k))
        .collect();
    assert!(extra.is_empty(), "refused yet stored: {extra:?}");
}
