-- The tables of the audit-cost pgbench runs (docs/performance.md,
-- "Session 16"): `clients` and `audit_log` as migration 31 leaves them on
-- PostgreSQL, and variants of the audit table for each run.
CREATE TABLE clients (
    id uuid PRIMARY KEY,
    agency_id uuid NOT NULL,
    name text NOT NULL,
    industry text,
    currency text NOT NULL,
    timezone text NOT NULL,
    locale text NOT NULL,
    report_recipients jsonb NOT NULL,
    digest_schedule text NOT NULL,
    touchpoint_library_id uuid,
    min_segment_n integer NOT NULL,
    archived_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    next_digest_at timestamptz,
    track_engagement boolean DEFAULT true NOT NULL
);
CREATE INDEX ix_clients_agency_id_id ON clients (agency_id, id);
CREATE INDEX ix_clients_agency_id_next_digest_at ON clients (agency_id, next_digest_at);

CREATE TABLE audit_log (
    id uuid NOT NULL,
    agency_id uuid NOT NULL,
    at timestamptz NOT NULL,
    actor_kind text NOT NULL,
    user_id uuid,
    api_key_id uuid,
    request_id text,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id uuid,
    changes jsonb NOT NULL,
    PRIMARY KEY (agency_id, id)
);
CREATE INDEX ix_audit_log_resource_id_id ON audit_log (resource_id, id) WHERE resource_id IS NOT NULL;

-- Primary key only.
CREATE TABLE audit_lean (LIKE audit_log INCLUDING DEFAULTS);
ALTER TABLE audit_lean ADD PRIMARY KEY (agency_id, id);
-- No index at all.
CREATE TABLE audit_heap (LIKE audit_log INCLUDING DEFAULTS);
-- No WAL, primary key.
CREATE UNLOGGED TABLE audit_unlogged (LIKE audit_log INCLUDING DEFAULTS);
ALTER TABLE audit_unlogged ADD PRIMARY KEY (agency_id, id);
-- `changes` as json, primary key only.
CREATE TABLE audit_json (LIKE audit_log INCLUDING DEFAULTS);
ALTER TABLE audit_json ALTER COLUMN changes TYPE json;
ALTER TABLE audit_json ADD PRIMARY KEY (agency_id, id);

-- 64 clients of one agency; pgbench client k updates client k mod 64.
INSERT INTO clients
SELECT gen_random_uuid(), '01a2516d-ae57-74d0-8924-1dc6a48b9b9e', 'Client ' || i, NULL, 'RUB',
       'Europe/Moscow', 'ru', '[]', 'weekly', NULL, 30, NULL, now(), now(), NULL, true
FROM generate_series(1, 64) i;
CREATE TABLE ids AS SELECT row_number() OVER () AS n, id FROM clients;

-- What the audited update statement raised with until migration 32
-- (app_raise.sql).
CREATE FUNCTION audited_update_missed() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = 'audited update found no row'; END $$;
