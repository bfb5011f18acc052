//! Purchases of a client's customers and the client's JTBD labelling rules
//! (analytics.md §6). Like every tenant table, each carries `agency_id` and
//! each index starts with it.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PURCHASES: &str = "purchases";
const RULES: &str = "jtbd_rules";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let col = |name: &str| ColumnDef::new(Alias::new(name));
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(PURCHASES))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("agency_id").uuid().not_null())
                    .col(col("client_id").uuid().not_null())
                    .col(col("external_id").text().null())
                    .col(col("customer_ref").text().not_null())
                    .col(col("purchased_at").timestamp_with_time_zone().not_null())
                    .col(col("amount").double().not_null())
                    .col(col("items").integer().not_null())
                    .col(col("party_size").integer().not_null())
                    .col(col("channel").text().null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        // (unique, columns). The unique index makes a re-sent external id a
        // no-op (ON CONFLICT DO NOTHING); rows without one never conflict.
        let purchase_indexes: [(bool, &[&str]); 3] = [
            (true, &["agency_id", "client_id", "external_id"]),
            (false, &["agency_id", "client_id", "purchased_at"]),
            (false, &["agency_id", "client_id", "customer_ref"]),
        ];
        for (unique, cols) in purchase_indexes {
            let mut index = Index::create();
            index
                .name(format!("ix_{PURCHASES}_{}", cols.join("_")))
                .table(Alias::new(PURCHASES))
                .if_not_exists();
            for c in cols {
                index.col(Alias::new(*c));
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        // One row per client: the ordered rules as a JSON list.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new(RULES))
                    .if_not_exists()
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("agency_id").uuid().not_null())
                    .col(col("client_id").uuid().not_null())
                    .col(col("rules").json_binary().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(format!("ix_{RULES}_agency_id_client_id"))
                    .table(Alias::new(RULES))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("client_id"))
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [RULES, PURCHASES] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}
