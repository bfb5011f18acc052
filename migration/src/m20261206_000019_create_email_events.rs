//! Engagement tracking: every open-pixel fetch and tracked click of a
//! campaign email is one `email_events` row (the raw log; stats count
//! unique recipients). Clients get `track_engagement`, on by default, so an
//! agency can switch the pixel and the link rewriting off per client.
//!
//! Every index starts with `agency_id`: by delivery (what one message did),
//! by client and recipient (the latest open/click per address, for scoring)
//! and by campaign (its unique opens and clicks).
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, R, T, add_columns, create_all, drop_all, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "email_events",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("delivery_id", K::Uuid, R),
        ("campaign_id", K::Uuid, N),
        // The recipient, lowercased.
        ("email", K::Text, R),
        // `opened` or `clicked`.
        ("kind", K::Text, R),
        // The original URL of a click.
        ("url", K::Text, N),
        ("user_agent", K::Text, N),
        ("created_at", K::Time, R),
    ],
    indexes: &[
        (false, &["agency_id", "delivery_id"]),
        (
            false,
            &["agency_id", "client_id", "email", "kind", "created_at"],
        ),
        (false, &["agency_id", "campaign_id", "kind"]),
    ],
}];

const CLIENTS: &[Added] = &[(("track_engagement", K::Bool, R), Some("TRUE"))];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await?;
        add_columns(manager, "clients", CLIENTS).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, "clients", CLIENTS).await?;
        drop_all(manager, TABLES).await
    }
}
