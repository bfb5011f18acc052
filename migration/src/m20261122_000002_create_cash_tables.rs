//! Cash Journey models (analytics.md §5): a model per client, its three
//! scenarios, actual figures per period and channel on/off calendars. Like
//! every tenant table, each carries `agency_id` and each index starts with it.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Column kinds used by these tables.
#[derive(Clone, Copy)]
enum K {
    Uuid,
    Text,
    Double,
    Time,
    Json,
}

/// One column: name, kind, nullable.
type C = (&'static str, K, bool);

const N: bool = true; // nullable
const R: bool = false; // required

fn column((name, kind, nullable): C) -> ColumnDef {
    let mut def = ColumnDef::new(Alias::new(name));
    match kind {
        K::Uuid => def.uuid(),
        K::Text => def.text(),
        K::Double => def.double(),
        K::Time => def.timestamp_with_time_zone(),
        K::Json => def.json_binary(),
    };
    if nullable {
        def.null();
    } else {
        def.not_null();
    }
    def
}

struct T {
    name: &'static str,
    columns: &'static [C],
    /// (unique, columns)
    indexes: &'static [(bool, &'static [&'static str])],
}

const TABLES: &[T] = &[
    T {
        name: "cash_models",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("name", K::Text, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    // Exactly one row per model and scenario (`min`, `base`, `max`).
    T {
        name: "cash_scenarios",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("model_id", K::Uuid, R),
            ("scenario", K::Text, R),
            ("reach", K::Double, R),
            ("ctr", K::Double, R),
            ("lead_rate", K::Double, R),
            ("conversion", K::Double, R),
            ("items_per_order", K::Double, R),
            ("item_price", K::Double, R),
            ("refusal_rate", K::Double, R),
            ("repeat_purchases", K::Double, R),
            ("repeat_uplift", K::Double, R),
            ("gross_margin", K::Double, R),
            ("marketing_cost", K::Double, R),
        ],
        indexes: &[(true, &["agency_id", "model_id", "scenario"])],
    },
    // Actual figures of one period (`YYYY-MM`); any of them may be absent.
    T {
        name: "cash_actuals",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("model_id", K::Uuid, R),
            ("period", K::Text, R),
            ("traffic", K::Double, N),
            ("leads", K::Double, N),
            ("first_sales", K::Double, N),
            ("check_amount", K::Double, N),
            ("completed", K::Double, N),
            ("first_revenue", K::Double, N),
            ("repeat_revenue", K::Double, N),
            ("revenue", K::Double, N),
            ("gross_profit", K::Double, N),
            ("profit", K::Double, N),
            ("romi", K::Double, N),
            ("cost_per_sale", K::Double, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(true, &["agency_id", "model_id", "period"])],
    },
    // A channel's on/off calendar with the daily metric, replaced as a whole.
    T {
        name: "cash_channels",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("model_id", K::Uuid, R),
            ("name", K::Text, R),
            ("metric", K::Text, R),
            ("days", K::Json, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(true, &["agency_id", "model_id", "name"])],
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES {
            let mut create = Table::create();
            create.table(Alias::new(t.name)).if_not_exists().col(
                ColumnDef::new(Alias::new("id"))
                    .uuid()
                    .not_null()
                    .primary_key(),
            );
            for c in t.columns {
                create.col(column(*c));
            }
            manager.create_table(create).await?;
            for (unique, cols) in t.indexes {
                let mut index = Index::create();
                index
                    .name(format!("ix_{}_{}", t.name, cols.join("_")))
                    .table(Alias::new(t.name))
                    .if_not_exists();
                for c in *cols {
                    index.col(Alias::new(*c));
                }
                if *unique {
                    index.unique();
                }
                manager.create_index(index).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(Alias::new(t.name)).to_owned())
                .await?;
        }
        Ok(())
    }
}
