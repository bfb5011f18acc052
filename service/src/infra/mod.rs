//! What every area uses and none owns: errors and the request context,
//! connections, transactions, COPY, pages, the job queue, idempotency keys,
//! the email pipeline (outbox, rendering, signed links, SMTP) and the
//! process's metrics.
pub mod audit;
pub mod cache;
pub mod ctx;
pub mod db;
pub mod db_health;
pub mod docs;
pub mod email;
pub mod error;
pub mod idempotency;
pub mod lease;
pub mod ledger;
pub mod metrics;
pub mod page;
pub mod pgcopy;
pub mod pgtx;
pub mod queue;
pub mod retention;
pub mod secrets;
pub mod webhooks;
