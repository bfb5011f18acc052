//! The audit log: one row per write by a user, an API key, a public caller
//! (subscribe/unsubscribe links) or the system, written in the transaction
//! of the write itself. `changes` holds the changed fields (`{field: {from,
//! to}}`), the fields set by a create, or what a delete removed — never a
//! secret (the writer redacts by field name). Ids are UUID v7, so `id`
//! orders rows by time and serves as the paging cursor.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "audit_log",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("at", K::Time, R),
        // user | api_key | public | system
        ("actor_kind", K::Text, R),
        ("user_id", K::Uuid, N),
        ("api_key_id", K::Uuid, N),
        ("request_id", K::Text, N),
        ("action", K::Text, R),
        ("resource_type", K::Text, R),
        ("resource_id", K::Uuid, N),
        ("changes", K::Json, R),
    ],
    indexes: &[
        (false, &["agency_id", "id"]),
        (false, &["agency_id", "resource_type", "resource_id", "id"]),
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
