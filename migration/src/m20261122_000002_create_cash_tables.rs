//! Cash Journey models (analytics.md §5): a model per client, its three
//! scenarios, actual figures per period and channel on/off calendars. Like
//! every tenant table, each carries `agency_id` and each index starts with it.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

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
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
