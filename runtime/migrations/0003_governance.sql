-- Governance configuration (channels, budgets, alert rules, policies, prices)
-- and alert state. All of it is configuration or decisions, not projections:
-- `projections rebuild` leaves it alone.
--
-- Scopes (budgets, rules, policies): scope_kind org | agent | workflow | model | tag;
-- scope_value is NULL for org, the id/name otherwise, `key=value` (an event
-- attribute) for tag.

CREATE TABLE notification_channels (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('slack', 'discord', 'webhook')),
    url         TEXT NOT NULL,
    -- HMAC-SHA256 key of `webhook` channels (signs every POST).
    secret      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- The MVP's one daily budget per org becomes an org-scoped day budget with a
-- Slack-compatible channel.
ALTER TABLE budgets RENAME TO budgets_v0;

CREATE TABLE budgets (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    name          TEXT NOT NULL,
    scope_kind    TEXT NOT NULL DEFAULT 'org'
                  CHECK (scope_kind IN ('org', 'agent', 'workflow', 'model', 'tag')),
    scope_value   TEXT,
    period        TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
    limit_usd     DOUBLE PRECISION NOT NULL CHECK (limit_usd > 0),
    -- Percent of the limit at which an alert fires (warn, exceeded, ...).
    thresholds    DOUBLE PRECISION[] NOT NULL DEFAULT '{80,100}',
    -- Pause the agents in scope once spend reaches this percent; NULL = alert only.
    pause_at_pct  DOUBLE PRECISION,
    -- Channels to notify; empty = every channel of the org.
    channels      UUID[] NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    CHECK ((scope_kind = 'org') = (scope_value IS NULL))
);

INSERT INTO notification_channels (org_id, name, kind, url)
SELECT org_id, 'default', 'slack', webhook_url FROM budgets_v0 WHERE webhook_url IS NOT NULL;
INSERT INTO budgets (org_id, name, period, limit_usd, thresholds)
SELECT org_id, 'default', 'day', daily_usd, '{100}' FROM budgets_v0;
DROP TABLE budgets_v0;

CREATE TABLE alert_rules (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         TEXT NOT NULL REFERENCES orgs (id),
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN
                   ('cost_per_day', 'error_rate', 'no_heartbeat', 'latency_p95', 'stuck_run')),
    scope_kind     TEXT NOT NULL DEFAULT 'org'
                   CHECK (scope_kind IN ('org', 'agent', 'workflow', 'model', 'tag')),
    scope_value    TEXT,
    -- cost_per_day: USD; error_rate: ratio 0..1; latency_p95: ms.
    threshold      DOUBLE PRECISION,
    -- error_rate / latency_p95: the trailing window.
    window_secs    INT,
    -- error_rate / latency_p95: fewest finished runs in the window to judge.
    min_runs       INT NOT NULL DEFAULT 1,
    -- no_heartbeat: silent for this long; stuck_run: running for this long.
    minutes        INT,
    cooldown_secs  INT NOT NULL DEFAULT 3600 CHECK (cooldown_secs >= 0),
    channels       UUID[] NOT NULL DEFAULT '{}',
    enabled        BOOLEAN NOT NULL DEFAULT true,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    CHECK ((scope_kind = 'org') = (scope_value IS NULL))
);

CREATE TABLE policies (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('model_allowlist', 'model_denylist',
                 'max_tokens_per_call', 'max_cost_per_run', 'forbidden_tools')),
    scope_kind   TEXT NOT NULL DEFAULT 'org'
                 CHECK (scope_kind IN ('org', 'agent', 'workflow', 'model', 'tag')),
    scope_value  TEXT,
    -- model_allowlist / model_denylist: model names (a listed name also
    -- matches its dated versions); forbidden_tools: tool names.
    names        TEXT[] NOT NULL DEFAULT '{}',
    -- max_tokens_per_call: tokens; max_cost_per_run: USD.
    limit_value  DOUBLE PRECISION,
    action       TEXT NOT NULL DEFAULT 'flag' CHECK (action IN ('flag', 'alert', 'pause')),
    channels     UUID[] NOT NULL DEFAULT '{}',
    enabled      BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name),
    CHECK ((scope_kind = 'org') = (scope_value IS NULL))
);

-- One row per (policy, event): replays and peers record a violation once.
CREATE TABLE policy_violations (
    policy_id    UUID NOT NULL,
    event_id     UUID NOT NULL,
    org_id       TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    run_id       TEXT,
    ts           TIMESTAMPTZ NOT NULL,
    action       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    event        JSONB NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (policy_id, event_id)
);
CREATE INDEX policy_violations_org_ts ON policy_violations (org_id, ts DESC);

-- Alerts gain a source, a scope, a state and a history.
-- source: budget | rule | policy | digest; source_id: the budget/rule/policy.
ALTER TABLE alerts
    ADD COLUMN source       TEXT NOT NULL DEFAULT 'budget',
    ADD COLUMN source_id    UUID,
    ADD COLUMN scope_key    TEXT NOT NULL DEFAULT '',
    ADD COLUMN state        TEXT NOT NULL DEFAULT 'firing'
                            CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    ADD COLUMN severity     TEXT NOT NULL DEFAULT 'warning',
    ADD COLUMN details      JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN channels     UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN acked_at     TIMESTAMPTZ,
    ADD COLUMN acked_by     TEXT,
    ADD COLUMN resolved_at  TIMESTAMPTZ;
-- A rule has at most one open alert per scope key (peers race on this index).
CREATE UNIQUE INDEX alerts_one_open_per_rule_scope ON alerts (source_id, scope_key)
    WHERE source = 'rule' AND state <> 'resolved';
CREATE INDEX alerts_org_created ON alerts (org_id, created_at DESC);

CREATE TABLE alert_history (
    id        BIGSERIAL PRIMARY KEY,
    alert_id  TEXT NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    state     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    note      TEXT,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, at);

-- One delivery per (alert, channel, transition), claimed before posting.
CREATE TABLE alert_deliveries (
    alert_id         TEXT NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    channel_id       UUID NOT NULL,
    transition       TEXT NOT NULL CHECK (transition IN ('firing', 'resolved')),
    claimed_at       TIMESTAMPTZ,
    delivered_at     TIMESTAMPTZ,
    dead_lettered_at TIMESTAMPTZ,
    attempts         INT NOT NULL DEFAULT 0,
    last_error       TEXT,
    PRIMARY KEY (alert_id, channel_id, transition)
);

-- Optional daily digest per org (yesterday vs the 7-day average).
CREATE TABLE digest_subscriptions (
    org_id     TEXT PRIMARY KEY REFERENCES orgs (id),
    channels   UUID[] NOT NULL DEFAULT '{}',
    -- Send once the UTC hour of day reaches this.
    hour_utc   INT NOT NULL DEFAULT 6 CHECK (hour_utc BETWEEN 0 AND 23),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Versioned model prices, USD per million tokens. org_id NULL = the global
-- table (seeded from processors/prices.toml); an org's rows override it.
-- A version applies to events whose UTC date is on or after effective_from.
CREATE TABLE model_prices (
    id              BIGSERIAL PRIMARY KEY,
    org_id          TEXT REFERENCES orgs (id),
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    aliases         TEXT[] NOT NULL DEFAULT '{}',
    effective_from  DATE NOT NULL DEFAULT '1970-01-01',
    input           DOUBLE PRECISION NOT NULL CHECK (input >= 0),
    output          DOUBLE PRECISION NOT NULL CHECK (output >= 0),
    cache_read      DOUBLE PRECISION CHECK (cache_read >= 0),
    cache_write     DOUBLE PRECISION CHECK (cache_write >= 0),
    reasoning       DOUBLE PRECISION CHECK (reasoning >= 0),
    created_by      TEXT NOT NULL DEFAULT 'seed',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (org_id, model, effective_from)
);

-- Who paused an agent (budget:<id>, policy:<id>, admin key) is in set_by;
-- the alert that caused it, if any:
ALTER TABLE agent_controls ADD COLUMN alert_id TEXT;
