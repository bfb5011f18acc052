//! Nurture chains (analytics.md §7): per client, a chain of steps (template,
//! delay after the previous step, optional condition on it) for the
//! contacts of a saved segment, or triggered by purchases (reverse chains);
//! one enrolment per contact, chain and trigger; a log of what each
//! enrolment did at each step.
//!
//! `chain_enrolments (next_at)` is read across agencies by the worker's tick
//! (like `campaigns (status, scheduled_at)`): it is null once an enrolment
//! is over, so the index holds only the waiting ones' times.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[
    T {
        name: "chains",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("name", K::Text, R),
            // segment or reverse
            ("kind", K::Text, R),
            ("segment_id", K::Uuid, N),
            // Reverse chains: days before the median inter-purchase interval.
            ("lead_days", K::Double, R),
            // Local send window, minutes after midnight: [start, end).
            ("window_start", K::Int, R),
            ("window_end", K::Int, R),
            // active or paused
            ("status", K::Text, R),
            // [{subject, html, text, delay_minutes, condition}]
            ("steps", K::Json, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    T {
        name: "chain_enrolments",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("chain_id", K::Uuid, R),
            ("contact_id", K::Uuid, R),
            // `segment`, or the id of the purchase that triggered it.
            ("trigger_key", K::Text, R),
            // active, completed or exited
            ("status", K::Text, R),
            // converted, unsubscribed, bounced, left_segment, repurchased
            ("exit_reason", K::Text, N),
            // The next step to send (its index).
            ("step", K::Int, R),
            // When that step is due (UTC); null once over.
            ("next_at", K::Time, N),
            ("enrolled_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (
                true,
                &["agency_id", "chain_id", "contact_id", "trigger_key"],
            ),
            (false, &["agency_id", "client_id", "status"]),
            (false, &["agency_id", "contact_id"]),
            (false, &["next_at"]),
        ],
    },
    T {
        name: "chain_log",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("chain_id", K::Uuid, R),
            ("enrolment_id", K::Uuid, R),
            ("contact_id", K::Uuid, R),
            ("step", K::Int, R),
            // enrolled, sent, skipped, exited, completed
            ("action", K::Text, R),
            ("reason", K::Text, N),
            // The delivery of a `sent` step.
            ("dedupe_key", K::Text, N),
            ("created_at", K::Time, R),
        ],
        indexes: &[
            (false, &["agency_id", "chain_id", "step"]),
            (true, &["agency_id", "enrolment_id", "step", "action"]),
        ],
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
