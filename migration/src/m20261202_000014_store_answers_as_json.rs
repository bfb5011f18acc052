//! PostgreSQL: response answers become `json` (text, checked on input)
//! instead of `jsonb`. The application validates and canonicalises every
//! answers document before storing it and never queries inside one in SQL;
//! it writes documents in bulk (imports) and reads them in bulk (panels).
//! `jsonb` made PostgreSQL build its binary form on every write and print
//! it back as text on every read: measured on a million 14-question
//! responses, a COPY out took 2.4 s as jsonb and 0.8-1.0 s as json, and a
//! COPY in of 100,000 rows 1.10 s against 0.89 s. SQLite stores JSON as
//! text already; nothing changes there.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn retype(manager: &SchemaManager<'_>, to: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE responses ALTER COLUMN answers TYPE {to} USING answers::{to}"
        ))
        .await
        .map(drop)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "json").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "jsonb").await
    }
}
