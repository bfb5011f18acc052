//! Responses ordered by (data_version, id) within a questionnaire: the order
//! panels read rows in. Extending the data_version index with `id` lets a
//! full recompute stream a million rows in that order from the index instead
//! of sorting them (a 1M-row sort of whole answers documents costs seconds).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const OLD: &str = "ix_responses_agency_id_questionnaire_id_data_version";
const NEW: &str = "ix_responses_agency_id_questionnaire_id_data_version_id";

fn index(name: &str, cols: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(name)
        .table(Alias::new("responses"))
        .if_not_exists();
    for c in cols {
        index.col(Alias::new(*c));
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                NEW,
                &["agency_id", "questionnaire_id", "data_version", "id"],
            ))
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD)
                    .table(Alias::new("responses"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index(
                OLD,
                &["agency_id", "questionnaire_id", "data_version"],
            ))
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(NEW)
                    .table(Alias::new("responses"))
                    .to_owned(),
            )
            .await
    }
}
