//! Segment hypotheses (analytics.md §2) of a client.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let col = |name: &str| ColumnDef::new(Alias::new(name));
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("hypotheses"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("agency_id").uuid().not_null())
                    .col(col("client_id").uuid().not_null())
                    .col(col("questionnaire_id").uuid().not_null())
                    .col(col("name").text().not_null())
                    .col(col("segment").json_binary().not_null())
                    .col(col("metric").json_binary().not_null())
                    .col(col("direction").text().not_null())
                    .col(col("comparison").text().not_null())
                    .col(col("min_effect").double().null())
                    .col(col("active").boolean().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_hypotheses_agency_id_client_id")
                    .table(Alias::new("hypotheses"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("client_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("hypotheses")).to_owned())
            .await
    }
}
