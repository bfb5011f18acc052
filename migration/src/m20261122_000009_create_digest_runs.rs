//! Client digests sent: one row per client and scheduled slot (unique, so a
//! slot is sent once however many workers look), with the figures it showed
//! so the next digest can say what changed.
use sea_orm_migration::prelude::*;

use crate::tables::{K, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "digest_runs",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        // The schedule slot (UTC), or the request time of a "send now".
        ("scheduled_for", K::Time, R),
        // scheduled or manual
        ("trigger", K::Text, R),
        ("figures", K::Json, R),
        ("created_at", K::Time, R),
    ],
    indexes: &[(true, &["agency_id", "client_id", "scheduled_for"])],
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
