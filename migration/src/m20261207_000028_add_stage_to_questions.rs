//! A barrier question may name the CJM stage where its barriers bite (a
//! stage of the client's touchpoint library), so the barrier analysis can
//! be read per stage. Existing questions name none.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const QUESTIONS: &[Added] = &[(("stage_id", K::Uuid, N), None)];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, "questions", QUESTIONS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "questions", QUESTIONS).await
    }
}
