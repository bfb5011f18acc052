//! Contacts' qualification moves out of the wide `contacts` rows into a
//! narrow `contact_scores` table, so that rescoring a million contacts
//! writes about 60 bytes a contact instead of rewriting every contact row
//! (attributes, indexes and all).
//!
//! - `contact_score_sets`: per client, the set of scores readers use now
//!   (`set_id`) and when the worker last scored the client.
//! - `contact_scores`: (set, contact) → score, probability, tier. A
//!   rescoring that changes most contacts writes a fresh set and switches
//!   to it in one transaction (then drops the old set); one that changes a
//!   few updates the current set in place.
//! - `scored_contacts`: the view readers query — every contact with its
//!   current score (0 and `cold` until it is first scored).
//!
//! The stored explanation goes: it is computed when a contact is read.
//! On PostgreSQL `contacts.attributes` becomes `json` (text kept as
//! written) instead of `jsonb`: the rescoring reads every contact's
//! attributes, and `jsonb` costs PostgreSQL 2 s per million rows to turn
//! back into text; nothing queries inside the attributes in SQL.
//!
//! Existing scores move into a first set per client whose id is the
//! client's id.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::tables::{Added, K, N, R, T, add_columns, create_all, drop_all, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SETS: &[T] = &[T {
    name: "contact_score_sets",
    columns: &[
        ("agency_id", K::Uuid, R),
        ("client_id", K::Uuid, R),
        ("set_id", K::Uuid, R),
        ("scored_at", K::Time, R),
    ],
    indexes: &[(true, &["agency_id", "client_id"])],
}];

/// The columns leaving `contacts`, with what old rows get on the way down.
const MOVED: &[Added] = &[
    (("score", K::Double, R), Some("0")),
    (("probability", K::Double, N), None),
    (("tier", K::Text, R), Some("'cold'")),
    (("explanation", K::Json, N), None),
    (("scored_at", K::Time, N), None),
];

const TIER_INDEX: &str = "ix_contacts_agency_id_client_id_tier";

const VIEW: &str = "CREATE VIEW scored_contacts AS \
    SELECT c.id, c.agency_id, c.client_id, c.email, c.name, c.locale, c.status, \
      c.source_channel, c.funnel, c.attributes, c.customer_ref, c.confirmed_at, c.converted, \
      c.converted_at, c.conversion_value, c.outcome_source, \
      COALESCE(s.score, 0.0) AS score, s.probability AS probability, \
      COALESCE(s.tier, 'cold') AS tier, \
      CASE WHEN s.contact_id IS NULL THEN NULL ELSE g.scored_at END AS scored_at, \
      c.created_at, c.updated_at \
    FROM contacts c \
    LEFT JOIN contact_score_sets g ON g.agency_id = c.agency_id AND g.client_id = c.client_id \
    LEFT JOIN contact_scores s ON s.set_id = g.set_id AND s.contact_id = c.id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        create_all(manager, SETS).await?;
        // No `id`: the key is (set, contact), so a fresh set is written in
        // contact order without touching the old set's index entries.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("contact_scores"))
                    .if_not_exists()
                    .col(ColumnDef::new(Alias::new("set_id")).uuid().not_null())
                    .col(ColumnDef::new(Alias::new("contact_id")).uuid().not_null())
                    .col(ColumnDef::new(Alias::new("agency_id")).uuid().not_null())
                    .col(ColumnDef::new(Alias::new("score")).double().not_null())
                    .col(ColumnDef::new(Alias::new("probability")).double().null())
                    .col(ColumnDef::new(Alias::new("tier")).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("set_id"))
                            .col(Alias::new("contact_id")),
                    )
                    .to_owned(),
            )
            .await?;
        // A first set per client that has contacts; its id is the client's.
        db.execute_unprepared(
            "INSERT INTO contact_score_sets (id, agency_id, client_id, set_id, scored_at) \
             SELECT client_id, agency_id, client_id, client_id, \
               COALESCE(MAX(scored_at), MAX(updated_at)) \
             FROM contacts GROUP BY agency_id, client_id",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO contact_scores (set_id, contact_id, agency_id, score, probability, tier) \
             SELECT client_id, id, agency_id, score, probability, tier FROM contacts \
             WHERE scored_at IS NOT NULL",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(TIER_INDEX)
                    .table(Alias::new("contacts"))
                    .to_owned(),
            )
            .await?;
        drop_columns(manager, "contacts", MOVED).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE contacts ALTER COLUMN attributes TYPE json USING attributes::json",
            )
            .await?;
        }
        db.execute_unprepared(VIEW).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP VIEW scored_contacts").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE contacts ALTER COLUMN attributes TYPE jsonb USING attributes::jsonb",
            )
            .await?;
        }
        add_columns(manager, "contacts", MOVED).await?;
        db.execute_unprepared(
            "UPDATE contacts SET \
               score = COALESCE((SELECT s.score FROM contact_scores s JOIN contact_score_sets g \
                 ON g.set_id = s.set_id WHERE g.agency_id = contacts.agency_id \
                 AND g.client_id = contacts.client_id AND s.contact_id = contacts.id), 0), \
               probability = (SELECT s.probability FROM contact_scores s JOIN contact_score_sets g \
                 ON g.set_id = s.set_id WHERE g.agency_id = contacts.agency_id \
                 AND g.client_id = contacts.client_id AND s.contact_id = contacts.id), \
               tier = COALESCE((SELECT s.tier FROM contact_scores s JOIN contact_score_sets g \
                 ON g.set_id = s.set_id WHERE g.agency_id = contacts.agency_id \
                 AND g.client_id = contacts.client_id AND s.contact_id = contacts.id), 'cold'), \
               scored_at = (SELECT g.scored_at FROM contact_scores s JOIN contact_score_sets g \
                 ON g.set_id = s.set_id WHERE g.agency_id = contacts.agency_id \
                 AND g.client_id = contacts.client_id AND s.contact_id = contacts.id)",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(TIER_INDEX)
                    .table(Alias::new("contacts"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("client_id"))
                    .col(Alias::new("tier"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("contact_scores")).to_owned())
            .await?;
        drop_all(manager, SETS).await
    }
}
