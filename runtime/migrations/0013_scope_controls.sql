-- Controls on a part of the coding-agent hierarchy (contract v2): a
-- project, machine, workspace or session paused or killed, by a budget of
-- that scope or an operator. The gateway answers them as directives
-- (`GET /v1/directives`), which the collector's Claude Code hook asks
-- before a tool runs. Agent controls stay in `agent_controls`.
CREATE TABLE scope_controls (
    org_id      TEXT NOT NULL,
    scope_kind  TEXT NOT NULL CHECK (scope_kind IN ('project', 'machine', 'workspace', 'session')),
    scope_value TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('pause', 'kill')),
    reason      TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    alert_id    TEXT,
    PRIMARY KEY (org_id, scope_kind, scope_value)
);
CREATE INDEX scope_controls_budget ON scope_controls (set_by) WHERE set_by LIKE 'budget:%';
