-- AgentOps schema v1 (plain PostgreSQL).
-- Configuration state (orgs, keys, budgets) and the projections built from the log.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          UUID PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    scopes      TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Daily spend budget per org (MVP: one budget, one Slack-compatible webhook).
CREATE TABLE budgets (
    org_id      TEXT PRIMARY KEY REFERENCES orgs (id),
    daily_usd   DOUBLE PRECISION NOT NULL CHECK (daily_usd > 0),
    webhook_url TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Alerts, identified deterministically so replays and peers never notify twice.
CREATE TABLE alerts (
    alert_id      TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    period        TEXT NOT NULL,
    threshold     DOUBLE PRECISION NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    message       TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at    TIMESTAMPTZ,
    notified_at   TIMESTAMPTZ,
    attempts      INT NOT NULL DEFAULT 0,
    last_error    TEXT
);

-- Every acknowledged event, once (event_id is the idempotency key).
CREATE TABLE events (
    event_id            UUID PRIMARY KEY,
    org_id              TEXT NOT NULL,
    ts                  TIMESTAMPTZ NOT NULL,
    agent_id            TEXT NOT NULL,
    workflow_id         TEXT,
    run_id              TEXT,
    type                TEXT NOT NULL,
    status              TEXT,
    latency_ms          BIGINT,
    provider            TEXT,
    model               TEXT,
    input_tokens        BIGINT,
    output_tokens       BIGINT,
    cache_read_tokens   BIGINT,
    cache_write_tokens  BIGINT,
    reasoning_tokens    BIGINT,
    cost_usd            DOUBLE PRECISION,
    cost_source         TEXT,
    tool_name           TEXT,
    error_type          TEXT,
    error_message       TEXT,
    trace_id            TEXT,
    span_id             TEXT,
    attributes          JSONB NOT NULL DEFAULT '{}',
    ingested_at         TIMESTAMPTZ
);
CREATE INDEX events_org_ts ON events (org_id, ts DESC);
CREATE INDEX events_org_errors ON events (org_id, ts DESC)
    WHERE type = 'run_failed' OR status IN ('error', 'failed');

CREATE TABLE runs (
    org_id         TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    workflow_id    TEXT,
    status         TEXT NOT NULL,
    started_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    latency_ms     BIGINT,
    cost_usd       DOUBLE PRECISION NOT NULL DEFAULT 0,
    input_tokens   BIGINT NOT NULL DEFAULT 0,
    output_tokens  BIGINT NOT NULL DEFAULT 0,
    llm_calls      BIGINT NOT NULL DEFAULT 0,
    tool_calls     BIGINT NOT NULL DEFAULT 0,
    error_type     TEXT,
    error_message  TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, run_id)
);
CREATE INDEX runs_org_ended ON runs (org_id, ended_at DESC);

-- Per-minute aggregate by org and agent, event time (UTC).
-- latency_hist holds run latency counts in fixed log-scale buckets
-- (see agentops_schemas::histogram), so percentiles merge across any window.
CREATE TABLE agg_minute (
    org_id              TEXT NOT NULL,
    bucket              TIMESTAMPTZ NOT NULL,
    agent_id            TEXT NOT NULL,
    events              BIGINT NOT NULL,
    runs_started        BIGINT NOT NULL,
    runs_completed      BIGINT NOT NULL,
    runs_failed         BIGINT NOT NULL,
    errors              BIGINT NOT NULL,
    llm_calls           BIGINT NOT NULL,
    tool_calls          BIGINT NOT NULL,
    input_tokens        BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    cache_read_tokens   BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost_usd            DOUBLE PRECISION NOT NULL,
    unpriced_calls      BIGINT NOT NULL,
    latency_hist        BIGINT[] NOT NULL,
    PRIMARY KEY (org_id, bucket, agent_id)
);

-- Kafka offsets of the projection consumers, written in the same transaction
-- as the rows they produced. next_offset is the next offset to read.
CREATE TABLE consumer_offsets (
    consumer_group  TEXT NOT NULL,
    topic           TEXT NOT NULL,
    partition       INT NOT NULL,
    next_offset     BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
