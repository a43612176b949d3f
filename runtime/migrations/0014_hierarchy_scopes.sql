-- Budgets and alert rules may be scoped to the hierarchy too (policies,
-- which pause agents, keep the agents' kinds).
ALTER TABLE budgets DROP CONSTRAINT budgets_scope_kind_check,
    ADD CONSTRAINT budgets_scope_kind_check CHECK (scope_kind IN
        ('org', 'agent', 'workflow', 'model', 'tag', 'project', 'machine', 'workspace', 'session'));
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_scope_kind_check,
    ADD CONSTRAINT alert_rules_scope_kind_check CHECK (scope_kind IN
        ('org', 'agent', 'workflow', 'model', 'tag', 'project', 'machine', 'workspace', 'session'));
