\set n 1 + (:client_id % 64)
SELECT id AS cid FROM ids WHERE n = :n \gset
SELECT * FROM clients WHERE id = :cid AND agency_id = '01a2516d-ae57-74d0-8924-1dc6a48b9b9e';
WITH updated AS (UPDATE clients SET name = 'Client ' || :n, updated_at = now() WHERE id = :cid RETURNING *) SELECT * FROM updated;
