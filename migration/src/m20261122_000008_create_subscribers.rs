//! Subscribers with their consent, lists per client, newsletter campaigns.
use sea_orm_migration::prelude::*;

use crate::tables::{K, N, R, T, create_all, drop_all};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[
    T {
        name: "subscriber_lists",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("name", K::Text, R),
            // The consent text subscribers agree to, and its version.
            ("consent_text", K::Text, R),
            ("consent_version", K::Int, R),
            // Origins allowed to call the public subscribe endpoint (CORS).
            ("allowed_origins", K::Json, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(false, &["agency_id", "client_id"])],
    },
    T {
        name: "subscribers",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("list_id", K::Uuid, R),
            ("email", K::Text, R),
            ("name", K::Text, N),
            ("locale", K::Text, R),
            // pending (awaiting confirmation), active, unsubscribed, bounced
            ("status", K::Text, R),
            // The consent record: when, which text, where from, from which IP.
            ("consent_at", K::Time, R),
            ("consent_version", K::Int, R),
            ("consent_text", K::Text, R),
            ("consent_source", K::Text, R),
            ("consent_ip", K::Text, N),
            ("confirmed_at", K::Time, N),
            ("unsubscribed_at", K::Time, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (true, &["agency_id", "list_id", "email"]),
            (false, &["agency_id", "list_id", "status"]),
        ],
    },
    T {
        name: "campaigns",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("list_id", K::Uuid, R),
            ("name", K::Text, R),
            ("subject", K::Text, R),
            // minijinja sources; {{ subscriber.name }} and friends.
            ("html", K::Text, R),
            ("text", K::Text, R),
            // draft, scheduled, sending, sent, cancelled
            ("status", K::Text, R),
            ("scheduled_at", K::Time, N),
            ("started_at", K::Time, N),
            ("finished_at", K::Time, N),
            ("total", K::BigInt, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (false, &["agency_id", "client_id"]),
            (false, &["status", "scheduled_at"]),
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
