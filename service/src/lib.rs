//! The shared service layer: tenant-scoped repositories and services that REST,
//! GraphQL and the worker all call. Every function that touches tenant data
//! takes a [`RequestCtx`] (or an explicit `agency_id` in jobs) and scopes every
//! query by `agency_id`; nothing above this crate talks to sea-orm.
pub mod commerce;
pub mod domain;
pub mod infra;
pub mod jobs;
pub mod mail;
pub mod platform;
pub mod report;
pub mod research;

// The paths transports (api, worker, tests) have always used. Inside this
// crate every module names its area: `crate::research::panel`, never
// `crate::panel` (tests/layers.rs checks it).
pub use commerce::cash;
pub use commerce::channels;
pub use commerce::jtbd::cache as jtbd_cache;
/// Purchases and the JTBD map, under the path transports have used.
pub mod purchases {
    pub use crate::commerce::jtbd::*;
    pub use crate::commerce::purchases::*;
}
pub use infra::{
    audit, cache, ctx, db, db_health, docs, email, error, idempotency, ledger, metrics, page,
    pgcopy, pgtx, queue, secrets, webhooks,
};
pub use mail::digest;
pub use mail::{chains, contacts, funnel, qualify, sender};
/// Lists, subscribers and campaigns, under the path transports have used.
pub mod subscribers {
    pub use crate::mail::campaigns::*;
    pub use crate::mail::lists::*;
    pub use crate::mail::subscribers::*;
}
pub use platform::{
    agency, api_keys, auth, clients, digest_schedule, libraries, members, report_links,
};
/// Webhook endpoints and their delivery log, for transports.
pub mod webhook_endpoints {
    pub use crate::platform::webhooks::*;
}
pub use research::panel::rows as panel_rows;
pub use research::{
    barriers, factors, hypotheses, panel, qfd, questionnaire_transfer, questionnaires, responses,
    segments, summary, tracks, ux,
};

use std::sync::Arc;

pub use ctx::{Perm, Principal, RequestCtx, Role, Scope};
pub use error::{AppError, AppResult, FieldError};
use sea_orm::DatabaseConnection;

/// Settings the service layer needs; the binary fills them from configuration.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub jwt_ttl_secs: i64,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub invitation_ttl_hours: i64,
    /// A pending recompute nobody picked up within this time is pushed again.
    pub sweep_grace_ms: i64,
    /// First retry delay of a failed recompute; doubles per attempt.
    pub retry_base_ms: i64,
    /// A worker waits this long after taking a target before reading it, so
    /// that a burst of writes is folded into one recompute.
    pub recompute_debounce_ms: u64,
    /// Failed-job alerts wait until none came for this long, so the ones
    /// given up together go out as one email per admin.
    pub alert_window_ms: i64,
    /// Seals secrets kept at rest (a client's SMTP URL); None: no secret
    /// key configured, so none can be kept.
    pub sealer: Option<Arc<infra::secrets::Sealer>>,
    /// Webhooks may go to loopback and private addresses over plain http
    /// (tests, local development); never in production.
    pub webhooks_allow_private: bool,
    /// A webhook delivery is retried for this long after its event, and an
    /// endpoint failing for this long is disabled.
    pub webhook_retry_horizon_ms: i64,
    /// First retry delay of a webhook delivery; doubles per attempt.
    pub webhook_retry_base_ms: i64,
    /// Days the audit log keeps a row (0: for ever).
    pub audit_retention_days: i64,
    /// Days the webhook delivery log keeps a finished delivery (0: for
    /// ever); an event is kept the retry horizon longer.
    pub webhook_retention_days: i64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            jwt_ttl_secs: 3600,
            jwt_issuer: "growthpoint".into(),
            jwt_audience: "growthpoint-api".into(),
            invitation_ttl_hours: 72,
            sweep_grace_ms: 10_000,
            retry_base_ms: 1_000,
            recompute_debounce_ms: 250,
            alert_window_ms: 5_000,
            sealer: None,
            webhooks_allow_private: false,
            webhook_retry_horizon_ms: 24 * 3_600_000,
            webhook_retry_base_ms: 5_000,
            audit_retention_days: 400,
            webhook_retention_days: 30,
        }
    }
}

/// Everything a transport needs, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub queue: queue::JobQueue,
    pub jwt: Arc<auth::JwtKeys>,
    pub config: Arc<ServiceConfig>,
    /// Per-process columnar cache of questionnaire responses.
    pub panels: Arc<panel::PanelCache>,
    /// Per-process cache of computed JTBD reports, keyed by data version.
    pub jtbd_reports: Arc<jtbd_cache::JtbdCache>,
    /// Per-process short-lived cache of memberships and API keys.
    pub auth_cache: Arc<auth::AuthCache>,
    /// Per-process client lists, coherent across processes ([`cache`]).
    pub client_cache: Arc<clients::ClientCache>,
    /// Outgoing mail (None: this process does not send).
    pub email: Option<Arc<email::EmailSettings>>,
    /// Signs and checks the links that work without login.
    pub links: Arc<email::links::LinkSigner>,
    /// Whether the database answers at all ([`db_health`]).
    pub db_health: Arc<db_health::DbHealth>,
    /// This process's counters, shown at `/metrics` ([`metrics`]).
    pub metrics: Arc<metrics::Metrics>,
}

impl Services {
    /// Drops what a committed write changed, here and — on PostgreSQL — in
    /// every other process (`NOTIFY`, see [`cache`]).
    pub async fn invalidate(&self, inv: cache::Invalidation) {
        self.invalidate_local(&inv);
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let stmt = sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [cache::CHANNEL.into(), inv.encode().into()],
            );
            if let Err(e) = sea_orm::ConnectionTrait::execute_raw(&self.db, stmt).await {
                // The other processes' copies expire on their own.
                tracing::warn!(error = %e, "could not publish a cache invalidation");
            }
        }
    }

    pub fn invalidate_local(&self, inv: &cache::Invalidation) {
        match inv {
            cache::Invalidation::Clients(a) => self.client_cache.invalidate(*a),
            cache::Invalidation::Members(a) => self.auth_cache.forget_members(*a),
            cache::Invalidation::ApiKey(k) => self.auth_cache.forget_key(k),
        }
    }

    /// Drops every cached read; `live`: whether invalidations from other
    /// processes are (again) being received.
    pub fn forget_everything(&self, live: bool) {
        self.auth_cache.clear();
        self.client_cache.set_live(live);
    }
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
