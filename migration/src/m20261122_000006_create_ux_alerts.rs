//! Alerts of the UX dynamic map (analytics.md §4): one row per negative flag
//! from the recompute that raised it until the one that no longer sees it.
//! `notified_at` is left for the email pipeline to set once it has told the
//! agency.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "ux_alerts",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        // `touchpoint_jtbd`, `touchpoint` or `stage`.
        ("scope", K::Text, R),
        // The flag's identity: its FlagKey as canonical JSON.
        ("flag_key", K::Text, R),
        ("touchpoint_id", K::Uuid, N),
        ("stage_id", K::Uuid, N),
        ("jtbd", K::Text, N),
        ("deviation", K::Double, N),
        ("current_mean", K::Double, N),
        ("baseline_mean", K::Double, N),
        ("current_n", K::BigInt, R),
        ("as_of", K::Text, R),
        ("data_version", K::BigInt, R),
        ("raised_at", K::Time, R),
        ("cleared_at", K::Time, N),
        ("notified_at", K::Time, N),
    ],
    indexes: &[
        (false, &["agency_id", "client_id", "cleared_at"]),
        (false, &["agency_id", "notified_at"]),
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
