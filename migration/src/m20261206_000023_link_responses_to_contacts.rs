//! Which contact a questionnaire response's e-mail answer belongs to
//! (analytics.md §7: a contact has "the questionnaire responses that
//! carried its e-mail").
//!
//! A table of its own rather than a `contact_id` column on `responses`:
//! responses are the bulk table — written by binary COPY, read by COPY
//! for panels, each of its indexes measured on import speed (see
//! `m20261202_000015`) — and linking would rewrite every linked row (an
//! UPDATE of 100,000 responses doubles their heap and index entries until
//! vacuum, since the new column would be indexed). Here the link is an
//! insert into a narrow table, `responses` keeps its shape, and the mail
//! area owns the rows it writes.
//!
//! `id` is the response's id, so a response has at most one row. A row
//! with a null `contact_id` records a response that was examined and
//! carried no usable address (so it is not parsed again). The response's
//! questionnaire and data version are copied: the highest version linked
//! per questionnaire is where the next linking starts (an index range of
//! `responses`, not a pass over all of them). A response that is deleted
//! simply leaves its row unmatched by every read, which joins `responses`.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[T {
    name: "response_contacts",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("questionnaire_id", K::Uuid, R),
        ("data_version", K::BigInt, R),
        ("contact_id", K::Uuid, N),
        ("created_at", K::Time, R),
    ],
    indexes: &[
        (false, &["agency_id", "contact_id"]),
        (false, &["agency_id", "client_id", "contact_id"]),
        (false, &["agency_id", "questionnaire_id", "data_version"]),
    ],
}];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
