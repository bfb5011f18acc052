//! Layered configuration: defaults here, overridden by `GROWTHPOINT_*`
//! variables and the conventional `DATABASE_URL`, `REDIS_URL`, `SMTP_URL`,
//! `JWT_SECRET`. With nothing set, everything lives in `./growthpoint-data`.
use std::path::PathBuf;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::{Deserialize, Serialize};

/// A string that never shows itself in logs or debug output.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address to listen on.
    pub bind: String,
    /// Folder of the embedded default: SQLite files, JWT key, email outbox.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// `redis://…` for the job queue; default: SQLite queue in `data_dir`.
    pub redis_url: Option<String>,
    /// `smtp://…`; default: `.eml` files in `data_dir/outbox`.
    pub smtp_url: Option<String>,
    /// HS256 key; required with PostgreSQL, generated once in `data_dir` otherwise.
    pub jwt_secret: Option<Secret>,
    /// Seals secrets kept at rest (clients' SMTP URLs), at least 32 bytes;
    /// generated once in `data_dir` with SQLite. Without it (PostgreSQL)
    /// no client can have its own SMTP server.
    pub secret_key: Option<Secret>,
    pub jwt_ttl_secs: i64,
    /// Queue name (Redis key prefix / SQLite queue); tests isolate with it.
    pub queue_name: String,
    /// Sign-up and login attempts per IP per minute.
    pub auth_rate_per_minute: u32,
    /// Requests per API key per second (burst of twice that).
    pub api_key_rate_per_second: u32,
    /// Largest JSON body, bytes.
    pub body_limit_bytes: usize,
    /// Largest import body, bytes.
    pub import_limit_bytes: usize,
    pub db_max_connections: u32,
    /// How long a request may queue for a pooled database connection while
    /// the database is up (a burst), ms. An outage is told apart by a probe
    /// and answered 503 `database_unavailable` at once, whatever this is.
    pub db_acquire_timeout_ms: u64,
    /// Run the worker inside `serve` (turned off by `--no-worker`).
    pub run_worker: bool,
    /// Write the audit log (`GROWTHPOINT_AUDIT=false` turns it off: only
    /// for measuring what it costs, never in production).
    pub audit: bool,
    /// Jobs one worker process runs at once.
    pub worker_concurrency: usize,
    /// How often the worker looks for work whose wake-up was lost, ms.
    pub sweep_interval_ms: u64,
    /// How often an idle worker polls the queue, ms.
    pub queue_poll_ms: u64,
    /// A pending recompute nobody picked up within this time is pushed again, ms.
    pub sweep_grace_ms: i64,
    /// First retry delay of a failed recompute (doubles per attempt), ms.
    pub retry_base_ms: i64,
    /// Wait before a recompute reads its data, folding a burst of writes, ms.
    pub recompute_debounce_ms: u64,
    /// Failed-job alerts are sent once no other job failed for this long
    /// (at the latest after 12 times that), batched per agency, ms.
    pub alert_window_ms: i64,
    /// How long a membership or API key read is reused, ms (a change made on
    /// another replica takes effect within this time; 0 = always re-read).
    pub auth_cache_ms: u64,
    /// How long a client list stays cached, ms. On PostgreSQL every write
    /// drops the copies of all processes at once (`LISTEN`/`NOTIFY`), so this
    /// only bounds the life of an entry; on SQLite the shorter
    /// `auth_cache_ms` applies. 0 = off.
    pub read_cache_ms: u64,
    /// The From of every email.
    pub mail_from: String,
    /// Most emails per second one agency sends from one worker process.
    pub email_rate_per_second: u32,
    /// SMTP connections kept open per worker process, and so messages in
    /// flight at once (each one a message a crash may repeat).
    pub smtp_pool_size: u32,
    /// First retry delay of a deferred email, ms; doubles per attempt.
    pub email_retry_base_ms: i64,
    /// How long a worker's claim on emails lasts unless renewed, ms: the
    /// emails of a worker that died are sent by another after this.
    pub email_lease_ms: i64,
    /// Where the API is reached from outside: the base of confirm and
    /// unsubscribe links in emails. Default: the address `serve` listens on
    /// (`bind`, with the port it got). Set it behind a proxy or load
    /// balancer, and for `worker` processes, whose own `bind` is unused.
    pub public_url: Option<String>,
    /// A listener of its own for `GET /metrics` (Prometheus text format,
    /// no credentials: bind it where only the Prometheus server reaches),
    /// in `serve` and `worker` alike, e.g. `127.0.0.1:9464`. Unset: none.
    pub metrics_addr: Option<String>,
    /// With this set (at least 16 characters), the API's own port also
    /// answers `GET /metrics` to `Authorization: Bearer <token>` (401 for
    /// any other); unset, it has no `/metrics` (404).
    pub metrics_token: Option<Secret>,
    /// Let webhooks go to loopback and private addresses, over plain
    /// `http://` too (tests, local development). Off in production: only
    /// `https://` to public addresses, checked again after DNS resolution.
    pub webhooks_allow_private: bool,
    /// How long a webhook delivery is retried after its event, ms; an
    /// endpoint failing for this long is disabled and its admins mailed.
    pub webhook_retry_horizon_ms: i64,
    /// First retry delay of a webhook delivery, ms (doubles per attempt,
    /// ±20 % jitter, at most an hour).
    pub webhook_retry_base_ms: i64,
    /// Days the audit log keeps a row; 0 keeps it for ever.
    pub audit_retention_days: i64,
    /// Days the webhook delivery log keeps a finished delivery; 0 keeps it
    /// for ever. Events are kept the retry horizon longer.
    pub webhook_retention_days: i64,
    /// How often the worker deletes what is past its retention, ms.
    pub retention_interval_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./growthpoint-data"),
            database_url: None,
            redis_url: None,
            smtp_url: None,
            jwt_secret: None,
            secret_key: None,
            jwt_ttl_secs: 3600,
            queue_name: "growthpoint-recompute".into(),
            auth_rate_per_minute: 20,
            api_key_rate_per_second: 500,
            body_limit_bytes: 1024 * 1024,
            import_limit_bytes: 256 * 1024 * 1024,
            db_max_connections: 16,
            db_acquire_timeout_ms: 10_000,
            run_worker: true,
            audit: true,
            worker_concurrency: 2,
            sweep_interval_ms: 2000,
            queue_poll_ms: 200,
            sweep_grace_ms: 10_000,
            retry_base_ms: 1_000,
            recompute_debounce_ms: 250,
            alert_window_ms: 5_000,
            auth_cache_ms: 2_000,
            read_cache_ms: 30_000,
            mail_from: "Growthpoint <reports@growthpoint.localhost>".into(),
            email_rate_per_second: 1_000,
            smtp_pool_size: 16,
            email_retry_base_ms: 30_000,
            email_lease_ms: service::email::DEFAULT_LEASE_MS,
            public_url: None,
            metrics_addr: None,
            metrics_token: None,
            webhooks_allow_private: false,
            webhook_retry_horizon_ms: 24 * 3_600_000,
            webhook_retry_base_ms: 5_000,
            audit_retention_days: 400,
            webhook_retention_days: 30,
            retention_interval_ms: 3_600_000,
        }
    }
}

impl Settings {
    /// Defaults, then the environment.
    pub fn load() -> anyhow::Result<Self> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL", "SMTP_URL", "JWT_SECRET"]))
            .merge(Env::prefixed("GROWTHPOINT_"))
            .extract()
            .context("while reading configuration")
    }

    /// The base of links in emails: `public_url`, else `bind` as a URL
    /// (with `port` when the listener was given one, e.g. for port 0).
    pub fn public_base(&self, port: Option<u16>) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let (host, bound_port) = self
            .bind
            .rsplit_once(':')
            .unwrap_or((self.bind.as_str(), "8080"));
        let host = match host {
            "0.0.0.0" | "" => "127.0.0.1",
            "[::]" => "[::1]",
            h => h,
        };
        match port {
            Some(p) => format!("http://{host}:{p}"),
            None => format!("http://{host}:{bound_port}"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres:") || u.starts_with("postgresql:"))
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("growthpoint.sqlite").display()
            )
        })
    }

    pub fn queue_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("queue.sqlite").display()
        )
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// The JWT key: configured, or generated once and kept in `data_dir`.
    pub fn jwt_key(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(s) = &self.jwt_secret {
            if s.expose().len() < 32 {
                anyhow::bail!("JWT_SECRET must be at least 32 bytes");
            }
            return Ok(s.expose().as_bytes().to_vec());
        }
        if self.is_postgres() {
            anyhow::bail!("JWT_SECRET is required with PostgreSQL (shared by every replica)");
        }
        self.key_file("jwt.key")
    }

    /// The key that seals secrets at rest: configured, or (SQLite)
    /// generated once and kept in `data_dir`; None with PostgreSQL unless
    /// configured (every replica must share it).
    pub fn secret_key(&self) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(s) = &self.secret_key {
            if s.expose().len() < 32 {
                anyhow::bail!("SECRET_KEY must be at least 32 bytes");
            }
            return Ok(Some(s.expose().as_bytes().to_vec()));
        }
        if self.is_postgres() {
            return Ok(None);
        }
        self.key_file("secret.key").map(Some)
    }

    /// A random key kept in `data_dir/name`, made the first time.
    fn key_file(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.data_dir.join(name);
        if let Ok(existing) = std::fs::read_to_string(&path) {
            let key = existing.trim();
            if key.len() >= 64 {
                return Ok(key.as_bytes().to_vec());
            }
        }
        let key: String = (0..2)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect::<Vec<_>>()
            .join("");
        std::fs::write(&path, &key).with_context(|| format!("while writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(key.into_bytes())
    }
}
