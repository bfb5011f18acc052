//! The rest of issue 4 (email): agency branding, subscriber attributes and
//! campaigns to a saved segment, and the ledger of failed-job alerts that
//! batches the ones given up together into one email per admin.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, R, T, add_columns, create_all, drop_all, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const AGENCIES: &[Added] = &[
    // https URL of the logo shown at the top of every email.
    (("logo_url", K::Text, N), None),
    // `#rrggbb` of the email header, buttons and charts; null = default.
    (("brand_colour", K::Text, N), None),
];

const SUBSCRIBERS: &[Added] = &[
    // A JSON object of string, number or string-array values.
    (("attributes", K::Json, R), Some("'{}'")),
];

const CAMPAIGNS: &[Added] = &[
    // A saved segment of the same client: only matching subscribers get it.
    (("segment_id", K::Uuid, N), None),
];

const TABLES: &[T] = &[T {
    name: "job_alerts",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("kind", K::Text, R),
        ("target_id", K::Uuid, R),
        // The data version that could not be computed: one alert per failure.
        ("data_version", K::BigInt, R),
        ("attempts", K::Int, R),
        ("error", K::Text, R),
        ("failed_at", K::Time, R),
        // Set, with the batch's id, in the transaction that queues the email.
        ("notified_at", K::Time, N),
        ("batch_id", K::Uuid, N),
    ],
    indexes: &[
        (true, &["agency_id", "kind", "target_id", "data_version"]),
        (false, &["agency_id", "notified_at"]),
    ],
}];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, "agencies", AGENCIES).await?;
        add_columns(manager, "subscribers", SUBSCRIBERS).await?;
        add_columns(manager, "campaigns", CAMPAIGNS).await?;
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await?;
        drop_columns(manager, "campaigns", CAMPAIGNS).await?;
        drop_columns(manager, "subscribers", SUBSCRIBERS).await?;
        drop_columns(manager, "agencies", AGENCIES).await
    }
}
