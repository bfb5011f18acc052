//! QFD for the CJM (analytics.md §3): factor × touchpoint correlations and
//! importance overrides of a client.
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
                    .table(Alias::new("qfd_cells"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("agency_id").uuid().not_null())
                    .col(col("client_id").uuid().not_null())
                    .col(col("factor_id").uuid().not_null())
                    .col(col("touchpoint_id").uuid().not_null())
                    .col(col("value").integer().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_qfd_cells_agency_client_factor_touchpoint")
                    .table(Alias::new("qfd_cells"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("client_id"))
                    .col(Alias::new("factor_id"))
                    .col(Alias::new("touchpoint_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("qfd_importances"))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("agency_id").uuid().not_null())
                    .col(col("client_id").uuid().not_null())
                    .col(col("factor_id").uuid().not_null())
                    .col(col("importance").double().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_qfd_importances_agency_client_factor")
                    .table(Alias::new("qfd_importances"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("client_id"))
                    .col(Alias::new("factor_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["qfd_importances", "qfd_cells"] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
