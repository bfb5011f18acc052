//! Channel figures (analytics.md §7): one row per client, day, channel and
//! funnel type. The unique index makes a re-sent day an update in place, so
//! importing the same CSV twice changes nothing.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "channel_days",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("day", K::Date, R),
        ("channel", K::Text, R),
        ("funnel", K::Text, R),
        ("spend", K::Double, R),
        ("impressions", K::BigInt, R),
        ("clicks", K::BigInt, R),
        ("contacts", K::BigInt, R),
        ("leads", K::BigInt, R),
        ("mentions", K::BigInt, R),
        ("brand_searches", K::BigInt, R),
        ("created_at", K::Time, R),
        ("updated_at", K::Time, N),
    ],
    indexes: &[(
        true,
        &["agency_id", "client_id", "day", "channel", "funnel"],
    )],
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
