//! Each client's next digest slot (UTC), so that a sweeper tick selects
//! only the clients that are due, in one query, instead of computing every
//! scheduled client's slot with a query each. The index starts with
//! `agency_id`, like every index on a tenant table.
//!
//! Existing rows get a lower bound, not a slot (the slot needs the time-zone
//! rules, which SQL does not have here): the last scheduled slot sent, else
//! the client's creation. The first tick turns it into the slot; the unique
//! `digest_runs` row keeps an already sent slot from going out again.
use sea_orm_migration::prelude::*;

use crate::tables::{Added, K, N, add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

const CLIENTS: &[Added] = &[
    // Null when the schedule is off.
    (("next_digest_at", K::Time, N), None),
];

const INDEX: &str = "ix_clients_agency_id_next_digest_at";

const BACKFILL: &str = r#"UPDATE clients SET next_digest_at = COALESCE(
    (SELECT MAX(d.scheduled_for) FROM digest_runs d
      WHERE d.agency_id = clients.agency_id AND d.client_id = clients.id
        AND d."trigger" = 'scheduled'),
    clients.created_at)
  WHERE digest_schedule <> 'off'"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, "clients", CLIENTS).await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Alias::new("clients"))
                    .col(Alias::new("agency_id"))
                    .col(Alias::new("next_digest_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Alias::new("clients"))
                    .to_owned(),
            )
            .await?;
        drop_columns(manager, "clients", CLIENTS).await
    }
}
