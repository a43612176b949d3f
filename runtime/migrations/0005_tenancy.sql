-- Orgs and API keys managed over the API (issue 5).
--
-- A platform org's admin keys may create and list orgs and set their ingest
-- limits; every other key acts within its own org only.
ALTER TABLE orgs
    ADD COLUMN platform BOOLEAN NOT NULL DEFAULT false,
    -- Per-org token bucket of the gateway: events per second and burst size.
    -- NULL: the gateway's configured default.
    ADD COLUMN ingest_events_per_sec DOUBLE PRECISION CHECK (ingest_events_per_sec > 0),
    ADD COLUMN ingest_burst DOUBLE PRECISION CHECK (ingest_burst >= 1);

ALTER TABLE api_keys
    ADD COLUMN name TEXT,
    ADD COLUMN created_by TEXT;

CREATE INDEX audit_log_org_at ON audit_log (org_id, at DESC);
