-- `GET /v1/alerts?state=firing` (query-api/src/governance/alerts.rs): the
-- org's alerts in one state, newest first, without walking the resolved
-- ones (checked by e2e/tests/query_plans.rs).
CREATE INDEX alerts_org_state_created ON alerts (org_id, state, created_at DESC);
