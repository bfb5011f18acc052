//! Report links: a signed, expiring, revocable URL per client to its live
//! report page (`GET /r/{token}`). The token is not stored: it is derived
//! from the row (id, expiry) and a MAC over agency, client, id and expiry,
//! so a digest can include the URL of a client's active link. Revoked links
//! stay, with `revoked_at`, so the list shows what was handed out.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "report_links",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("label", K::Text, N),
        // Whole seconds: the token carries it as a Unix time.
        ("expires_at", K::Time, R),
        ("revoked_at", K::Time, N),
        ("created_by", K::Uuid, N),
        ("created_at", K::Time, R),
    ],
    indexes: &[(false, &["agency_id", "client_id", "id"])],
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
