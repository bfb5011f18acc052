//! The job queue: apalis on SQLite (embedded) or Redis (production).
//!
//! The queue only carries wake-up calls. What must be done is recorded in the
//! `recompute_targets` ledger, in the same transaction as the data change, so
//! a lost or duplicated queue message can delay work but never lose or repeat it.
use anyhow::Context;
use apalis::prelude::TaskSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Recompute the derived results of one target (e.g. a questionnaire).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecomputeJob {
    pub agency_id: Uuid,
    pub kind: String,
    pub target_id: Uuid,
}

/// The longest a push or ping waits for the queue.
pub const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

pub type SqliteQueue = apalis_sqlite::SqliteStorage<RecomputeJob>;
pub type RedisQueue = apalis_redis::RedisStorage<RecomputeJob>;

#[derive(Clone)]
pub enum JobQueue {
    Sqlite(SqliteQueue),
    Redis(RedisQueue),
}

impl JobQueue {
    /// Opens (and sets up) the SQLite queue in its own database file.
    pub async fn sqlite(url: &str, queue_name: &str) -> anyhow::Result<Self> {
        let opts: apalis_sqlite::SqliteConnectOptions = url
            .parse::<apalis_sqlite::SqliteConnectOptions>()
            .context("while parsing the queue URL")?
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = apalis_sqlite::SqlitePool::connect_with(opts)
            .await
            .context("while opening the SQLite job queue")?;
        apalis_sqlite::SqliteStorage::setup(&pool)
            .await
            .context("while setting up the SQLite job queue")?;
        let config = apalis_sqlite::Config::default().queue(queue_name);
        Ok(JobQueue::Sqlite(
            apalis_sqlite::SqliteStorage::new(&pool).with_config(config),
        ))
    }

    pub async fn redis(url: &str, queue_name: &str) -> anyhow::Result<Self> {
        let conn = apalis_redis::connect(url.to_owned())
            .await
            .with_context(|| {
                format!(
                    "while connecting to Redis at {}",
                    crate::infra::db::redact(url)
                )
            })?;
        let config = apalis_redis::Config::default().queue(queue_name);
        Ok(JobQueue::Redis(
            apalis_redis::RedisStorage::new(conn).with_config(config),
        ))
    }

    /// Pushes a wake-up call, giving up after [`PUSH_TIMEOUT`]: the ledger
    /// holds the work and the sweeper re-arms it, so a queue that is down
    /// (Redis restarting: its client retries for about ten seconds) must not
    /// hold up the request that wrote the data.
    pub async fn push(&self, job: RecomputeJob) -> anyhow::Result<()> {
        let pushed = async {
            match self {
                JobQueue::Sqlite(s) => s
                    .clone()
                    .push(job)
                    .await
                    .map_err(|e| anyhow::anyhow!("sqlite queue push: {e}")),
                JobQueue::Redis(s) => s
                    .clone()
                    .push(job)
                    .await
                    .map_err(|e| anyhow::anyhow!("redis queue push: {e}")),
            }
        };
        tokio::time::timeout(PUSH_TIMEOUT, pushed)
            .await
            .map_err(|_| anyhow::anyhow!("queue push: no answer within {PUSH_TIMEOUT:?}"))?
    }

    /// Is the queue reachable (within [`PUSH_TIMEOUT`])?
    pub async fn ping(&self) -> anyhow::Result<()> {
        let pinged = async {
            match self {
                JobQueue::Sqlite(s) => {
                    sea_orm::sqlx::query("SELECT 1")
                        .execute(s.pool())
                        .await
                        .context("sqlite queue")?;
                }
                JobQueue::Redis(s) => {
                    let mut s = s.clone();
                    let conn = s.get_connection();
                    let _: String = redis::cmd("PING")
                        .query_async(conn)
                        .await
                        .context("redis queue")?;
                }
            }
            Ok(())
        };
        tokio::time::timeout(PUSH_TIMEOUT, pinged)
            .await
            .map_err(|_| anyhow::anyhow!("queue: no answer within {PUSH_TIMEOUT:?}"))?
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            JobQueue::Sqlite(_) => "sqlite",
            JobQueue::Redis(_) => "redis",
        }
    }
}
