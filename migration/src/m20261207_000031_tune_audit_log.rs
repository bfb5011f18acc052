//! PostgreSQL: the audit log's indexes get fewer and narrower, because
//! every write through the API inserts into each of them (and logs it:
//! measured with `pg_waldump`, an audited one-row update wrote 540 bytes
//! of WAL where the update alone wrote 130, the heap row 210 of them and
//! the index entries 88 and 112).
//! - The primary key becomes `(agency_id, id)` and the separate
//!   `(agency_id, id)` index goes. Every read of the log is one agency's,
//!   paged by id, which the new key serves as the index did; the retention
//!   sweep deletes per agency through it.
//! - `(agency_id, resource_type, resource_id, id)` becomes `(resource_id,
//!   id)`, only for rows that name a resource: one resource's history
//!   (resource ids are unique across agencies; the agency is still
//!   checked) in id order. A filter on the resource type alone reads the
//!   agency's key range: types are few and each is a large share.
//!
//! SQLite, the single-node embedded mode, keeps its schema: changing a key
//! there means rebuilding the table.
//!
//! Also creates `audited_update_missed()`, which that statement called to
//! fail — and so roll its audit row back — when its update found no row
//! (`service::infra::audit::cte`): plain SQL has no way to raise. Migration
//! 32 drops it again: the statement no longer needs it.
use crate::tables::postgres_only as run;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            "ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, \
             ADD CONSTRAINT audit_log_pkey PRIMARY KEY (agency_id, id); \
             DROP INDEX IF EXISTS ix_audit_log_agency_id_id; \
             DROP INDEX IF EXISTS ix_audit_log_agency_id_resource_type_resource_id_id; \
             CREATE INDEX IF NOT EXISTS ix_audit_log_resource_id_id ON audit_log (resource_id, id) \
             WHERE resource_id IS NOT NULL; \
             CREATE OR REPLACE FUNCTION audited_update_missed() RETURNS boolean \
             LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION USING \
             ERRCODE = 'P0002', MESSAGE = 'audited update found no row'; END $$",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(
            manager,
            "ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, \
             ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id); \
             CREATE INDEX IF NOT EXISTS ix_audit_log_agency_id_id ON audit_log (agency_id, id); \
             DROP INDEX IF EXISTS ix_audit_log_resource_id_id; \
             CREATE INDEX IF NOT EXISTS ix_audit_log_agency_id_resource_type_resource_id_id \
             ON audit_log (agency_id, resource_type, resource_id, id); \
             DROP FUNCTION IF EXISTS audited_update_missed()",
        )
        .await
    }
}
