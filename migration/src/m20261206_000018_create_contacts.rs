//! Contacts (analytics.md §7): one per client and e-mail, whatever lists it
//! is on, with its attributes, source channel and funnel type, status,
//! score, tier and explanation, and its outcome. Per-client scoring rules
//! and tier thresholds. Subscribers point at their contact.
//!
//! Existing subscribers become contacts here, in SQL that both backends
//! run: one contact per (agency, client, e-mail), taking the id, name,
//! locale and attributes of the earliest subscription of that address
//! (subscription e-mails are stored lower-cased), confirmed at the earliest
//! confirmation, `active` when any subscription is active or pending,
//! `bounced` when one bounced and none is active, else `unsubscribed`.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, R, T, add_columns, create_all, drop_all, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[T] = &[
    T {
        name: "contacts",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            ("email", K::Text, R),
            ("name", K::Text, N),
            ("locale", K::Text, N),
            // active, unsubscribed, bounced
            ("status", K::Text, R),
            ("source_channel", K::Text, N),
            // reach, warming, reverse
            ("funnel", K::Text, R),
            ("attributes", K::Json, R),
            // The purchases' customer_ref of this contact.
            ("customer_ref", K::Text, N),
            ("confirmed_at", K::Time, N),
            // The outcome: converted true/false, or unknown (null).
            ("converted", K::Bool, N),
            ("converted_at", K::Time, N),
            ("conversion_value", K::Double, N),
            // api or purchase
            ("outcome_source", K::Text, N),
            ("score", K::Double, R),
            ("probability", K::Double, N),
            // hot, warm, cold
            ("tier", K::Text, R),
            // Rules matched with points, top model features (JSON).
            ("explanation", K::Json, N),
            ("scored_at", K::Time, N),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[
            (true, &["agency_id", "client_id", "email"]),
            (false, &["agency_id", "client_id", "tier"]),
            (false, &["agency_id", "client_id", "customer_ref"]),
        ],
    },
    T {
        name: "scoring_settings",
        columns: &[
            ("agency_id", K::Uuid, R),
            ("client_id", K::Uuid, R),
            // [{name, points, when}] (analytics::funnel::ScoreRule)
            ("rules", K::Json, R),
            // {hot_probability, warm_probability, hot_score, warm_score}
            ("thresholds", K::Json, R),
            ("lambda", K::Double, R),
            ("created_at", K::Time, R),
            ("updated_at", K::Time, R),
        ],
        indexes: &[(true, &["agency_id", "client_id"])],
    },
];

const INDEX: &str = "ix_subscribers_agency_id_contact_id";

const SUBSCRIBERS: &[Added] = &[(("contact_id", K::Uuid, N), None)];

const BACKFILL: &[&str] = &[
    r#"INSERT INTO contacts (id, agency_id, client_id, email, name, locale, status,
        source_channel, funnel, attributes, customer_ref, confirmed_at, converted,
        converted_at, conversion_value, outcome_source, score, probability, tier,
        explanation, scored_at, created_at, updated_at)
      SELECT s.id, s.agency_id, s.client_id, s.email, s.name, s.locale,
        CASE
          WHEN EXISTS (SELECT 1 FROM subscribers o WHERE o.agency_id = s.agency_id
            AND o.client_id = s.client_id AND o.email = s.email
            AND o.status IN ('active', 'pending')) THEN 'active'
          WHEN EXISTS (SELECT 1 FROM subscribers o WHERE o.agency_id = s.agency_id
            AND o.client_id = s.client_id AND o.email = s.email
            AND o.status = 'bounced') THEN 'bounced'
          ELSE 'unsubscribed' END,
        NULL, 'reach', s.attributes, NULL,
        (SELECT MIN(o.confirmed_at) FROM subscribers o WHERE o.agency_id = s.agency_id
            AND o.client_id = s.client_id AND o.email = s.email),
        NULL, NULL, NULL, NULL, 0, NULL, 'cold', NULL, NULL, s.created_at, s.updated_at
      FROM subscribers s
      WHERE NOT EXISTS (SELECT 1 FROM subscribers e WHERE e.agency_id = s.agency_id
        AND e.client_id = s.client_id AND e.email = s.email
        AND (e.created_at < s.created_at OR (e.created_at = s.created_at AND e.id < s.id)))"#,
    r#"UPDATE subscribers SET contact_id = (SELECT c.id FROM contacts c
        WHERE c.agency_id = subscribers.agency_id AND c.client_id = subscribers.client_id
          AND c.email = subscribers.email)"#,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_all(manager, TABLES).await?;
        add_columns(manager, "subscribers", SUBSCRIBERS).await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Alias::new("subscribers"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("contact_id"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for sql in BACKFILL {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Alias::new("subscribers"))
                    .to_owned(),
            )
            .await?;
        drop_columns(manager, "subscribers", SUBSCRIBERS).await?;
        drop_all(manager, TABLES).await
    }
}
