//! A client's own sender for the emails to its audience and its report
//! recipients (confirmations, newsletters, chains, digests): From name and
//! address, Reply-To, and optionally its own SMTP server. The SMTP URL
//! carries a password: it is kept sealed (`infra::secrets`, bound to the
//! agency and client) and never returned. No row: the global sender.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "client_senders",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("from_name", K::Text, N),
        ("from_address", K::Text, N),
        ("reply_to", K::Text, N),
        ("smtp_url_sealed", K::Text, N),
        ("smtp_host", K::Text, N),
        ("created_at", K::Time, R),
        ("updated_at", K::Time, R),
    ],
    indexes: &[(true, &["agency_id", "client_id"])],
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
