-- Projections move to storage-mode-aware relations created by
-- agentops_runtime::storage::setup (hypertable + continuous aggregates on
-- TimescaleDB, partitioned table + worker-maintained aggregates otherwise).
-- The old projection tables are dropped; `projections rebuild` refills the new
-- ones from the Kafka log.
DROP TABLE IF EXISTS agg_minute;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS runs;
DELETE FROM consumer_offsets;

CREATE TABLE storage_settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Control state of agents (paused / killed), set by budgets, policies or an
-- admin; configuration, not a projection, so a rebuild keeps it.
CREATE TABLE agent_controls (
    org_id      TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('pause', 'kill')),
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, agent_id)
);
