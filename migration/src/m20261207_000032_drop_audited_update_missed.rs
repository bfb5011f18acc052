//! PostgreSQL: drops `audited_update_missed()`. The audited one-row update
//! (`service::infra::audit::cte`) now inserts its audit row from what the
//! update returned, so an update that finds no row writes none and
//! nothing has to raise to roll it back. `down` restores the function.
use crate::tables::postgres_only as run;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, "DROP FUNCTION IF EXISTS audited_update_missed()").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            "CREATE OR REPLACE FUNCTION audited_update_missed() RETURNS boolean \
             LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION USING \
             ERRCODE = 'P0002', MESSAGE = 'audited update found no row'; END $$",
        )
        .await
    }
}
