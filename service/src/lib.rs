//! The shared service layer: tenant-scoped repositories and services that REST,
//! GraphQL and the worker all call. Every function that touches tenant data
//! takes a [`RequestCtx`] (or an explicit `agency_id` in jobs) and scopes every
//! query by `agency_id`; nothing above this crate talks to sea-orm.
pub mod api_keys;
pub mod auth;
pub mod cash;
pub mod clients;
pub mod ctx;
pub mod db;
pub mod domain;
pub mod error;
pub mod factors;
pub mod hypotheses;
pub mod idempotency;
pub mod jobs;
pub mod libraries;
pub mod members;
pub mod page;
pub mod panel;
pub mod purchases;
pub mod qfd;
pub mod questionnaires;
pub mod queue;
pub mod responses;
pub mod segments;
pub mod summary;
pub mod ux;

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
    /// Per-process short-lived cache of memberships and API keys.
    pub auth_cache: Arc<auth::AuthCache>,
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
