//! A worker's short claim on a batch of ledger rows (emails, webhooks):
//! taken by setting the rows' lease owner and end, renewed every third of
//! its length while the batch is sent, so the rows of a worker that died
//! are free again within one lease; a worker whose renewals fail stops
//! starting new sends before anyone else may claim the rows.
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Utc;
use uuid::Uuid;

pub struct Lease {
    /// The rows' lease owner: the worker and this claim.
    pub token: String,
    pub ids: Vec<Uuid>,
    pub lease_ms: i64,
    /// Until when the rows are ours, as of the last successful renewal.
    until_ms: AtomicI64,
}

impl Lease {
    /// A claim by `worker_id` on `ids`, taken at `now_ms`.
    pub fn new(worker_id: &str, ids: Vec<Uuid>, lease_ms: i64, now_ms: i64) -> Self {
        Lease {
            token: format!("{worker_id}:{}", Uuid::new_v4().simple()),
            ids,
            lease_ms,
            until_ms: AtomicI64::new(now_ms + lease_ms),
        }
    }

    /// Is there at least a third of the lease left? A send started now
    /// finishes before anyone else may claim the row.
    pub fn holds(&self) -> bool {
        Utc::now().timestamp_millis() + self.lease_ms / 3 < self.until_ms.load(Ordering::Acquire)
    }

    /// Calls `renew(new end)` every third of the lease (it updates the
    /// rows still owned by [`Lease::token`]); never returns, so it is
    /// raced against the sending and dropped with it.
    pub async fn keep<F, Fut>(&self, what: &str, renew: F) -> std::convert::Infallible
    where
        F: Fn(i64) -> Fut,
        Fut: std::future::Future<Output = Result<(), sea_orm::DbErr>>,
    {
        let every = std::time::Duration::from_millis((self.lease_ms / 3).max(1) as u64);
        loop {
            tokio::time::sleep(every).await;
            let until = Utc::now().timestamp_millis() + self.lease_ms;
            match renew(until).await {
                Ok(()) => self.until_ms.store(until, Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "could not renew a lease on {what}"),
            }
        }
    }
}
