//! Score sets waiting to be purged. A rescoring that writes a fresh set of
//! a client's scores used to delete the old set's rows in its own
//! transaction: a million-row DELETE (0.7 s on PostgreSQL, then as much
//! again for vacuum) on the path every rescoring waits for. Now the switch
//! of set records the old one here, in the same transaction, and the
//! worker's sweeper deletes its rows afterwards. Readers never see a
//! queued set: they reach scores only through `contact_score_sets`.
//!
//! `id` is the queued set's id.
use sea_orm_migration::prelude::*;

use crate::tables::{K, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "contact_score_purges",
    columns: &[("agency_id", K::Uuid, R), ("created_at", K::Time, R)],
    indexes: &[(false, &["created_at"])],
}];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The queued sets' rows go with the queue.
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM contact_scores WHERE set_id IN (SELECT id FROM contact_score_purges)",
            )
            .await?;
        drop_all(manager, TABLES).await
    }
}
