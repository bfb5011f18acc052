//! Customer tracks (issue 14): one segment's journey per client — the
//! ordered steps with their influence agents and barriers kept as one JSON
//! document (they are always written whole, `PUT …/steps`) — and the free
//! notes from interviews and sales calls beside it. The computed parts live
//! in `snapshots` (kind `track`), keyed by the track.
use sea_orm_migration::prelude::*;

use crate::tables::{K, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[
    T {
        name: "tracks",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("segment_id", K::Uuid, R),
            // The customer panel the segment is read from.
            ("questionnaire_id", K::Uuid, R),
            ("name", K::Text, R),
            // [{stage_id, touchpoint_id, task, agents: [...], barriers: [...]}]
            ("steps", K::Json, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (false, &["agency_id", "client_id", "id"]),
            (false, &["agency_id", "segment_id"]),
        ],
    },
    T {
        name: "track_notes",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("track_id", K::Uuid, R),
            ("text", K::Text, R),
            // interview, sales_call, other
            ("source", K::Text, R),
            ("noted_on", K::Date, R),
            ("created_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "track_id", "id"])],
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
