//! The outgoing-mail ledger: one row per (kind, source, recipient), written
//! before anything is sent and unique by `dedupe_key`, holding the rendered
//! message, so a retry sends the same bytes with the same Message-ID.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "email_deliveries",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, N),
        // ux_alerts, job_failed, digest, confirm, newsletter, …
        ("kind", K::Text, R),
        ("source_id", K::Uuid, N),
        ("recipient", K::Text, R),
        ("dedupe_key", K::Text, R),
        ("message_id", K::Text, R),
        ("subject", K::Text, R),
        // {html, text, headers, inline}: the rendered message.
        ("body", K::Json, R),
        // queued, sent, deferred, failed
        ("status", K::Text, R),
        ("attempts", K::Int, R),
        ("next_attempt_ms", K::BigInt, R),
        ("lease_owner", K::Text, N),
        ("lease_until_ms", K::BigInt, R),
        ("last_error", K::Text, N),
        ("created_at", K::Time, R),
        ("sent_at", K::Time, N),
        ("updated_at", K::Time, R),
    ],
    indexes: &[
        (true, &["agency_id", "dedupe_key"]),
        (false, &["agency_id", "kind", "source_id"]),
        (false, &["status", "next_attempt_ms"]),
    ],
}];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
