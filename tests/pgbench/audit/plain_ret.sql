\set n 1 + (:client_id % 64)
SELECT id AS cid FROM ids WHERE n = :n \gset
SELECT * FROM clients WHERE id = :cid AND agency_id = :ag;
UPDATE "clients" SET "name" = 'Client ' || :n, "updated_at" = now() WHERE "clients"."id" = :cid RETURNING "id", "agency_id", "name", "industry", "currency", "timezone", "locale", "report_recipients", "digest_schedule", "touchpoint_library_id", "min_segment_n", "archived_at", "created_at", "updated_at", "next_digest_at", "track_engagement";
