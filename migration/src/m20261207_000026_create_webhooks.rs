//! Signed outbound webhooks: an agency's endpoints (the signing secret
//! sealed at rest, bound to agency and endpoint; the previous one kept
//! during a rotation's overlap), the events that happened (one row per
//! fact, its id the `webhook-id` receivers dedupe on) and one delivery per
//! (endpoint, event): the ledger the worker claims and retries, as with
//! emails.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[
    T {
        name: "webhook_endpoints",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("url", K::Text, R),
            ("description", K::Text, R),
            // A JSON array of event types; null: every type.
            ("event_types", K::Json, N),
            ("enabled", K::Bool, R),
            ("disabled_reason", K::Text, N),
            ("secret_sealed", K::Text, R),
            ("previous_secret_sealed", K::Text, N),
            ("previous_secret_until", K::Time, N),
            // Since when every delivery to it has failed (null: it works).
            ("failing_since", K::Time, N),
            // Disabled for failing: the admins' email is still to be queued.
            ("alert_pending", K::Bool, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "enabled"])],
    },
    T {
        name: "webhook_events",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("event_type", K::Text, R),
            // The whole body sent: {type, timestamp, data}.
            ("payload", K::Json, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "created_at"])],
    },
    T {
        name: "webhook_deliveries",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("endpoint_id", K::Uuid, R),
            ("event_id", K::Uuid, R),
            ("event_type", K::Text, R),
            // pending, retrying, delivered, failed
            ("status", K::Text, R),
            ("attempts", K::Int, R),
            ("next_attempt_ms", K::BigInt, R),
            ("lease_owner", K::Text, N),
            ("lease_until_ms", K::BigInt, R),
            ("last_status_code", K::Int, N),
            ("last_error", K::Text, N),
            ("last_duration_ms", K::Int, N),
            ("created_at", K::Time, R),
            ("delivered_at", K::Time, N),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (true, &["agency_id", "endpoint_id", "event_id"]),
            (false, &["agency_id", "endpoint_id", "id"]),
            (false, &["status", "next_attempt_ms"]),
        ],
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
