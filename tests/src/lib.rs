//! Black-box test harness: each test spawns the whole application (API and
//! worker) on port 0 against its own database — a fresh PostgreSQL database
//! with its own Redis queue name, or a fresh SQLite folder — and talks HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench_util;
pub mod tracks;
pub mod webhook_sink;
pub mod world;

use std::time::{Duration, Instant};

use api::configuration::{Secret, Settings};
use api::startup::Application;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use service::Services;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per mode for each named async fn(Mode).
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Mode::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Mode::Postgres).await
                }
            )*
        }
    };
}

/// Polls `f` until it holds; fails after `secs` with `what`.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub mode: Mode,
    pub services: Services,
    pub settings: Settings,
    /// The port of the `metrics_addr` listener, when the settings ask for one.
    pub metrics_port: Option<u16>,
    _dir: Option<TempDir>,
}

/// A folder removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Settled {
    pub settings: Settings,
    dir: Option<TempDir>,
}

/// Settings for a fresh, isolated world in `mode`.
pub async fn test_settings(mode: Mode) -> Settled {
    let id = Uuid::new_v4().simple().to_string();
    let mut s = Settings {
        bind: "127.0.0.1:0".into(),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        // Seals clients' SMTP URLs; a fresh one per world.
        secret_key: Some(Secret::new(format!("sealing-key-{id}"))),
        auth_rate_per_minute: 100_000,
        // Webhook receivers in tests listen on loopback; the guard's
        // production behaviour is tested with this off
        // (tests/tests/webhooks.rs).
        webhooks_allow_private: true,
        api_key_rate_per_second: 100_000,
        sweep_interval_ms: 200,
        queue_poll_ms: 50,
        sweep_grace_ms: 1_000,
        retry_base_ms: 20,
        // A dead worker's emails are taken over within this.
        email_lease_ms: 3_000,
        db_max_connections: 8,
        queue_name: format!("gp-test-{id}"),
        ..Settings::default()
    };
    let dir = std::env::temp_dir().join(format!("gp-test-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    s.data_dir = dir.clone();
    if mode == Mode::Postgres {
        let admin = Database::connect(pg_admin_url())
            .await
            .expect("PostgreSQL must be running for the postgres tests (see README)");
        let name = format!("gp_test_{id}");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = pg_admin_url();
        let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(&base);
        s.database_url = Some(format!("{root}/{name}"));
        s.redis_url = Some(redis_url());
    }
    Settled {
        settings: s,
        dir: Some(TempDir(dir)),
    }
}

pub async fn spawn_app(mode: Mode) -> TestApp {
    spawn_with(mode, |_| {}).await
}

pub async fn spawn_with(mode: Mode, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    // Logs go to the test's captured output (shown when it fails).
    api::telemetry::init();
    let Settled { mut settings, dir } = test_settings(mode).await;
    tweak(&mut settings);
    start(mode, settings, dir).await
}

async fn start(mode: Mode, settings: Settings, dir: Option<TempDir>) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("the application starts");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        mode,
        services,
        settings,
        metrics_port,
        _dir: dir,
    }
}

impl TestApp {
    /// Another API process (own port, caches and worker off) on this app's
    /// database and queue, as a second replica behind a load balancer.
    pub async fn replica(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.run_worker = false;
        start(self.mode, settings, None).await
    }
}

/// The settings as `GROWTHPOINT_*` environment variables, one per field
/// that is set, so another process loads exactly these settings.
pub fn settings_env(settings: &Settings) -> Vec<(String, String)> {
    let Value::Object(fields) = serde_json::to_value(settings).unwrap() else {
        unreachable!("settings serialise to an object")
    };
    fields
        .into_iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::Null => return None,
                Value::String(s) => s,
                other => other.to_string(),
            };
            Some((format!("GROWTHPOINT_{}", k.to_uppercase()), v))
        })
        .collect()
}

/// A `growthpoint worker` OS process on a test app's database and queue,
/// so a test can kill it for real. Its log is a file in the data folder.
/// Killed (SIGKILL) on drop.
pub struct WorkerProcess {
    child: std::process::Child,
    pub log: std::path::PathBuf,
}

impl TestApp {
    /// Starts `exe worker` (`exe`: the test's `env!("CARGO_BIN_EXE_…")` of
    /// the `growthpoint-cli` binary) with this app's settings.
    pub fn worker_process(&self, exe: &str, name: &str) -> WorkerProcess {
        let log = self.settings.data_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("worker")
            .envs(settings_env(&self.settings))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // Only the settings above count, not the test runner's environment.
        for var in ["DATABASE_URL", "REDIS_URL", "SMTP_URL", "JWT_SECRET"] {
            cmd.env_remove(var);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,sqlx=warn,sea_orm=warn,apalis=warn");
        }
        WorkerProcess {
            child: cmd.spawn().expect("the growthpoint binary starts"),
            log,
        }
    }
}

impl WorkerProcess {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, as when the machine loses the process.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Panics with the end of its log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("the worker process exited ({status}):\n{}", self.log_tail());
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one HTTP call returned.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> &Value {
        &self.body
    }

    /// The `field`s named by a problem document.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An agency's owner, signed in.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub token: String,
    pub agency_id: String,
    pub user_id: String,
    pub email: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request sent");
        Self::read(r).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Resp {
        self.call(
            Method::POST,
            "/graphql",
            token,
            Some(json!({"query": query, "variables": variables})),
        )
        .await
    }

    pub async fn signup(&self, agency: &str) -> Tenant {
        let email = format!(
            "{}@{}.example.com",
            Uuid::new_v4().simple(),
            agency.to_lowercase().replace(' ', "-")
        );
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"agency_name": agency, "name": "Owner", "email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        Tenant {
            token: r.body["token"].as_str().unwrap().to_owned(),
            agency_id: r.body["agency"]["id"].as_str().unwrap().to_owned(),
            user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    /// Imports NDJSON responses into a questionnaire, asserting 201; the
    /// answer (`inserted`, `data_version`, …).
    pub async fn import_ndjson(&self, token: &str, questionnaire: &str, rows: String) -> Value {
        let r = self
            .raw(
                Method::POST,
                &format!("/api/v1/questionnaires/{questionnaire}/responses/import"),
                Some(token),
                "application/x-ndjson",
                rows,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    /// A clone of the template touchpoint library, asserting 201; the library.
    pub async fn clone_template(&self, token: &str) -> Value {
        let lib = self
            .post(
                &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}/clone"),
                token,
                json!({}),
            )
            .await;
        assert_eq!(lib.status, StatusCode::CREATED, "{}", lib.text);
        lib.body
    }

    /// Signs in with a password; the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Creates and returns the id of a resource, asserting 201.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> String {
        let r = self.post(path, token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A member of `owner`'s agency with `role`, invited and accepted;
    /// their token.
    pub async fn member(&self, owner: &Tenant, role: &str) -> String {
        let r = self
            .post(
                "/api/v1/members",
                &owner.token,
                json!({"email": format!("{role}-{}@acme.example.com", Uuid::new_v4().simple()), "role": role}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let invite = r.body["invitation_token"].as_str().unwrap().to_owned();
        let r = self
            .call(
                Method::POST,
                "/api/v1/auth/accept-invitation",
                None,
                Some(json!({"token": invite, "name": role, "password": "a long enough password"})),
            )
            .await;
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn api_key(&self, token: &str, scopes: &[&str]) -> String {
        let r = self
            .post(
                "/api/v1/api-keys",
                token,
                json!({"name": "test key", "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["key"].as_str().unwrap().to_owned()
    }

    /// Polls the summary until it reflects `version` (the worker is async;
    /// this waits for the condition, not for a fixed time).
    pub async fn wait_for_summary(&self, token: &str, questionnaire: &str, version: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self
                .get(
                    &format!("/api/v1/questionnaires/{questionnaire}/summary"),
                    token,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            if r.body["data_version"].as_i64().unwrap_or(0) >= version {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "summary never reached version {version}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl TestApp {
    /// Polls a client's hypothesis results until they are fresh at a data
    /// version above `seen`; the body.
    pub async fn hypotheses_after(&self, token: &str, client: &str, seen: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self
                .get(
                    &format!("/api/v1/clients/{client}/hypotheses/results"),
                    token,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            if r.body["status"] == "fresh" && r.body["data_version"].as_i64().unwrap_or(0) > seen {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "results never refreshed: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Rolls the schema back to just before the migration whose name ends with
/// `suffix`, then migrates up again: what an upgrade from a database of that
/// time runs.
pub async fn rerun_migrations_from(db: &sea_orm::DatabaseConnection, suffix: &str) {
    use migration::MigratorTrait;
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let at = names
        .iter()
        .position(|n| n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no migration named *{suffix}"));
    let steps = u32::try_from(names.len() - at).unwrap();
    migration::Migrator::down(db, Some(steps)).await.unwrap();
    migration::Migrator::up(db, None).await.unwrap();
}

impl TestApp {
    /// Waits until the worker has finished a `kind` recompute of `target`
    /// reflecting at least `version` (from the agency's job runs).
    pub async fn wait_for_job(&self, token: &str, kind: &str, target: &str, version: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self
                .get("/api/v1/jobs?status=succeeded&limit=200", token)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let done = r.body["items"].as_array().into_iter().flatten().any(|j| {
                j["kind"] == kind
                    && j["target_id"] == target
                    && j["data_version"].as_i64().unwrap_or(0) >= version
            });
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} recompute of {target} at version {version}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the worker has finished the `kind` recompute of `target`
    /// as of every write so far (the ledger's wanted version).
    pub async fn wait_settled(&self, t: &Tenant, kind: &str, target: &str) {
        let v = service::infra::ledger::wanted_version(
            &self.services.db,
            uuid::Uuid::parse_str(&t.agency_id).unwrap(),
            kind,
            uuid::Uuid::parse_str(target).unwrap(),
        )
        .await
        .unwrap();
        self.wait_for_job(&t.token, kind, target, v).await;
    }
}

/// An agency whose list has confirmed subscribers (imported, addresses
/// `r0000@example.com`…) and a personalised campaign to it, not sent yet.
pub struct Newsletter {
    pub owner: Tenant,
    pub client: String,
    pub list: String,
    pub campaign: String,
}

/// The [`Newsletter`] world with `n` subscribers; the campaign's HTML body
/// is `html` (`{{ subscriber.name }}` is replaced per recipient).
pub async fn newsletter(app: &TestApp, n: usize, html: &str) -> Newsletter {
    let owner = app.signup("Acme").await;
    let client = app
        .create(
            "/api/v1/clients",
            &owner.token,
            json!({"name": "Shop", "locale": "en"}),
        )
        .await;
    let list = app
        .create(
            &format!("/api/v1/clients/{client}/lists"),
            &owner.token,
            json!({"name": "News", "consent_text": "I agree to receive news."}),
        )
        .await;
    let mut csv = String::from("email,name,consent_source\n");
    for i in 0..n {
        csv.push_str(&format!("r{i:04}@example.com,Reader {i},fair 2026\n"));
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{list}/subscribers/import"),
            Some(&owner.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], n);
    let campaign = app
        .create(
            &format!("/api/v1/clients/{client}/campaigns"),
            &owner.token,
            json!({"list_id": list, "name": "November", "subject": "News for {{ subscriber.name }}",
                   "html": html, "text": "Hello {{ subscriber.name }}!"}),
        )
        .await;
    Newsletter {
        owner,
        client,
        list,
        campaign,
    }
}

impl Newsletter {
    pub async fn send(&self, app: &TestApp) {
        let r = app
            .post(
                &format!("/api/v1/campaigns/{}/send", self.campaign),
                &self.owner.token,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    pub async fn stats(&self, app: &TestApp) -> Value {
        let r = app
            .get(
                &format!("/api/v1/campaigns/{}/stats", self.campaign),
                &self.owner.token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    /// Waits until the ledger says all `n` recipients were sent, calling
    /// `each_poll` with the stats every time (e.g. to check a process).
    pub async fn wait_all_sent(
        &self,
        app: &TestApp,
        n: usize,
        secs: u64,
        mut each_poll: impl FnMut(&Value),
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.stats(app).await;
            each_poll(&s);
            if s["sent"].as_u64() == Some(n as u64) && s["status"] == "sent" {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the campaign never finished: {s}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The headless-Chromium checks of `tests/browser/` (playwright-core
/// driving Debian's Chromium, `CHROMIUM` to override): node scripts that
/// print one JSON report on stdout with `"ok"`.
pub struct Browser {
    dir: std::path::PathBuf,
    chromium: std::path::PathBuf,
}

impl Browser {
    /// The tools, or None after saying why they are missing; under CI
    /// (`CI=true`) a missing tool fails the test instead.
    pub fn find() -> Option<Browser> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
        let chromium = std::path::PathBuf::from(
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        );
        let node = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let why = if !node {
            "node is not installed".to_owned()
        } else if !chromium.exists() {
            format!(
                "{} is missing (apt-get install chromium)",
                chromium.display()
            )
        } else if !dir.join("node_modules/playwright-core").is_dir() {
            format!(
                "playwright-core is not installed (npm ci in {})",
                dir.display()
            )
        } else {
            return Some(Browser { dir, chromium });
        };
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "{why} (bash .ci/run installs it)");
        eprintln!("SKIPPED: {why}");
        None
    }

    /// Runs `script` with `args`; its report (asserted ok) and the report
    /// pretty-printed, for messages.
    pub async fn run(&self, script: &str, args: &[&str]) -> (Value, String) {
        let mut cmd = std::process::Command::new("node");
        cmd.arg(self.dir.join(script))
            .args(args)
            .env("CHROMIUM", &self.chromium)
            .current_dir(&self.dir);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no report from {script}\n{stdout}\n{stderr}"));
        let shown = serde_json::to_string_pretty(&report).unwrap();
        assert!(
            out.status.success() && report["ok"] == true,
            "the browser check {script} failed ({}):\n{shown}\n{stderr}",
            out.status
        );
        (report, shown)
    }
}

/// A small world: client, two factors, a cloned library and a panel
/// questionnaire with every question type.
pub struct Panel {
    pub client: String,
    pub factors: [String; 2],
    pub library: String,
    pub touchpoint: String,
    pub questionnaire: String,
}

pub const TEMPLATE_LIBRARY: &str = "00000000-0000-7000-8000-000000000001";

pub async fn panel(app: &TestApp, t: &Tenant) -> Panel {
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Fitness club", "timezone": "Europe/Moscow", "locale": "en"}),
        )
        .await;
    let f1 = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Price"}),
        )
        .await;
    let f2 = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Location"}),
        )
        .await;
    let lib = app.clone_template(&t.token).await;
    let library = lib["id"].as_str().unwrap().to_owned();
    let touchpoint = lib["stages"][0]["touchpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let questionnaire = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            panel_questions(&f1, &f2, &touchpoint),
        )
        .await;
    Panel {
        client,
        factors: [f1, f2],
        library,
        touchpoint,
        questionnaire,
    }
}

pub fn panel_questions(f1: &str, f2: &str, tp: &str) -> Value {
    json!({
        "title": "Customer panel",
        "kind": "customer_panel",
        "questions": [
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "role": "segment_attribute", "required": true},
            {"key": "source", "type": "multi_choice", "options": ["social", "tv", "friends"], "role": "source_channel"},
            {"key": "price", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": f1},
            {"key": "location", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": f2},
            {"key": "nps", "type": "nps_0_10", "role": "nps"},
            {"key": "budget", "type": "number", "role": "spend", "min": 0, "max": 1000000},
            {"key": "comment", "type": "text", "role": "recommendation"},
            {"key": "mail", "type": "email"},
            {"key": "visit", "type": "date"},
            {"key": "reception", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp}
        ]
    })
}

/// `n` valid NDJSON rows with external ids `{prefix}{i}`.
pub fn ndjson_rows(prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * 160);
    for i in 0..n {
        let city = if i % 3 == 0 { "spb" } else { "msk" };
        let src = match i % 4 {
            0 => "[\"social\"]",
            1 => "[\"tv\",\"friends\"]",
            2 => "[]",
            _ => "[\"friends\"]",
        };
        s.push_str(&format!(
            "{{\"external_id\":\"{prefix}{i}\",\"answers\":{{\"city\":\"{city}\",\"source\":{src},\"price\":{},\"location\":{},\"nps\":{},\"budget\":{}}}}}\n",
            1 + i % 5,
            1 + (i / 5) % 5,
            i % 11,
            (i % 100) * 1000
        ));
    }
    s
}

/// The same rows as CSV.
pub fn csv_rows(prefix: &str, n: usize) -> String {
    let mut s = String::from("external_id,city,source,price,location,nps,budget\n");
    for i in 0..n {
        let city = if i % 3 == 0 { "spb" } else { "msk" };
        let src = match i % 4 {
            0 => "social",
            1 => "tv;friends",
            2 => "",
            _ => "friends",
        };
        s.push_str(&format!(
            "{prefix}{i},{city},{src},{},{},{},{}\n",
            1 + i % 5,
            1 + (i / 5) % 5,
            i % 11,
            (i % 100) * 1000
        ));
    }
    s
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved kept).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real SMTP server on loopback (`tests/smtp_sink.py`, aiosmtpd): every
/// accepted message lands as an `.eml` file in its own folder. `args` adds
/// faults (`--data-replies 421,451`, `--reject REGEX`). Stopped on drop.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpSink {
    pub fn start(args: &[&str]) -> SmtpSink {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("gp-smtp-{}", Uuid::new_v4().simple()));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/smtp_sink.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg("--dir")
            .arg(&dir)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (the SMTP sink needs python3 with aiosmtpd: bash .ci/run installs it)");
        let stdout = child.stdout.take().expect("sink stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP sink starts");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP sink did not start (is aiosmtpd installed? pip install aiosmtpd): {line:?}")
            });
        SmtpSink { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        read_eml_dir(&self.dir)
    }

    /// Waits until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        wait_for_files(&self.dir, n).await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `.eml` files of a folder, sorted by name.
pub fn read_eml_dir(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// Waits until `dir` holds at least `n` `.eml` files.
pub async fn wait_for_files(dir: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = read_eml_dir(dir);
        if m.len() >= n {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} emails in {}, found {}",
            dir.display(),
            m.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a test reads off a received message (decoded by mail-parser).
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub message_id: String,
    /// The top-level Content-Type, e.g. `multipart/alternative`.
    pub content_type: String,
    pub text: String,
    pub html: String,
    /// Content-IDs of inline parts.
    pub inline_cids: Vec<String>,
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    pub raw: String,
}

pub fn parse_mail(raw: &str) -> Mail {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a parsable message");
    let addr = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    let ct = m
        .content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
        .unwrap_or_default();
    Mail {
        subject: m.subject().unwrap_or_default().to_owned(),
        from: addr(m.from()),
        to: addr(m.to()),
        message_id: m.message_id().unwrap_or_default().to_owned(),
        content_type: ct,
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: m.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        inline_cids: m
            .parts
            .iter()
            .filter_map(|p| p.content_id().map(str::to_owned))
            .collect(),
        list_unsubscribe: m
            .header_raw("List-Unsubscribe")
            .map(|v| v.trim().to_owned()),
        list_unsubscribe_post: m
            .header_raw("List-Unsubscribe-Post")
            .map(|v| v.trim().to_owned()),
        raw: raw.to_owned(),
    }
}

/// A fitness club with one mystery-shopper questionnaire rating the first
/// touchpoint of the experience stage: (client, questionnaire, touchpoint).
pub async fn mystery_audit(app: &TestApp, t: &Tenant, locale: &str) -> (String, String, String) {
    let lib = app.clone_template(&t.token).await;
    let tp = lib["stages"][3]["touchpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Fitness club", "timezone": "UTC", "locale": locale}),
        )
        .await;
    let audit = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Mystery shopper", "kind": "mystery_shopper", "questions": [
                {"key": "visit", "type": "date", "role": "visit_date", "required": true},
                {"key": "job", "type": "single_choice", "options": ["lose_weight"], "role": "jtbd"},
                {"key": "reception", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp}
            ]}),
        )
        .await;
    (client, audit, tp)
}

/// CSV of audits `(days ago, rating)`, dated relative to today (UTC).
pub fn audits_csv(rows: &[(i64, u8)]) -> String {
    let mut csv = String::from("visit,job,reception\n");
    for (ago, rating) in rows {
        let day = chrono::Utc::now().date_naive() - chrono::Duration::days(*ago);
        csv.push_str(&format!("{day},lose_weight,{rating}\n"));
    }
    csv
}

/// Baseline 5, 5, 5 and this week 1, 1, 1: one negative flag at each level.
pub const FALLING: [(i64, u8); 6] = [(20, 5), (15, 5), (10, 5), (3, 1), (2, 1), (1, 1)];

/// Inserts a recompute target of `t`'s agency whose computation always
/// fails (no such kind), pending now; returns its target id.
pub async fn failing_target(app: &TestApp, t: &Tenant) -> String {
    failing_recompute(&app.services.db, t.agency_id.parse().unwrap())
        .await
        .to_string()
}

/// [`failing_target`] for an agency known by id; returns the target id.
pub async fn failing_recompute(db: &sea_orm::DatabaseConnection, agency_id: Uuid) -> Uuid {
    use sea_orm::{ActiveModelTrait, Set};
    let target = Uuid::now_v7();
    entity::recompute_target::ActiveModel {
        id: Set(Uuid::now_v7()),
        agency_id: Set(agency_id),
        kind: Set("no_such_kind".into()),
        target_id: Set(target),
        wanted_version: Set(1),
        computed_version: Set(0),
        pending: Set(true),
        pending_since_ms: Set(0),
        lease_owner: Set(None),
        lease_until_ms: Set(0),
        next_attempt_ms: Set(0),
        attempts: Set(0),
        last_error: Set(None),
        updated_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    target
}
