//! A large history generated in the database (as `agentops-loadgen
//! bench-queries` does, `loadgen/src/bench_store.rs`): an org's events over
//! days, the three aggregate levels built from them with the plain-mode
//! writer's own column definitions, the runs and agents folded from them,
//! alerts, deliveries, policy violations and audit rows, and the older
//! months a long-lived platform keeps. Used by `tests/query_plans.rs`.

use agentops_runtime::storage;
use anyhow::{Context, Result};
use chrono::Utc;
use sqlx::PgPool;

/// Load the history in SQL (as `agentops-loadgen bench-queries` does):
/// `n` events of `org` over `days` days, the aggregate levels and the runs
/// built from them with the worker's definitions.
pub async fn load_org(pool: &PgPool, org: &str, n: i64, agents: i64, days: i64) -> Result<()> {
    let today = Utc::now().date_naive();
    let first = today - chrono::Days::new(days as u64);
    let all: Vec<_> = first.iter_days().take(days as usize + 2).collect();
    let mut conn = pool.acquire().await?;
    storage::ensure_partitions(&mut conn, &all).await?;
    // Event i: run i/5, step i%5 (start, llm, llm, tool, end); 1 run in 12 fails.
    sqlx::query(
        "INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status,
             latency_ms, lat_bucket, provider, model, input_tokens, output_tokens, cost_usd,
             cost_source, tool_name, error_type, error_message, attributes,
             session_id, project_id, machine_id, workspace_id)
         SELECT gen_random_uuid(), $6,
             now() - make_interval(secs => $3 * 86400.0 * (1 - i::float8 / $2)),
             'agent-' || ((i / 5) % $4), 'wf-' || ((i / 5) % $4 % 7), $6 || '-run-' || (i / 5),
             CASE i % 5 WHEN 0 THEN 'run_started' WHEN 3 THEN 'tool_call'
                 WHEN 4 THEN CASE WHEN (i / 5) % 12 = 0 THEN 'run_failed' ELSE 'run_completed' END
                 ELSE 'llm_call' END,
             CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'error' END,
             CASE WHEN i % 5 = 4 THEN 300 + (i * 7919) % 29700 WHEN i % 5 IN (1, 2) THEN 200 + i % 3800 END,
             CASE WHEN i % 5 = 4 THEN
                 1 + floor(log(2::numeric, (300 + (i * 7919) % 29700)::numeric) * 4)::int2 END,
             CASE WHEN i % 5 IN (1, 2) THEN 'openai' END,
             CASE WHEN i % 5 IN (1, 2) THEN
                 CASE WHEN (i / 5) % 3 = 0 THEN 'gpt-4o-mini' WHEN (i / 5) % 97 = 0 THEN 'mystery-model'
                      ELSE 'gpt-4o' END END,
             CASE WHEN i % 5 IN (1, 2) THEN 200 + i % 3800 END,
             CASE WHEN i % 5 IN (1, 2) THEN 50 + i % 750 END,
             CASE WHEN i % 5 IN (1, 2) THEN (i % 500) / 10000.0 END,
             CASE WHEN i % 5 IN (1, 2) THEN
                 CASE WHEN (i / 5) % 97 = 0 THEN 'unknown' ELSE 'computed' END END,
             CASE WHEN i % 5 = 3 THEN 'search' END,
             CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'tool_error' END,
             CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'search tool timed out' END,
             jsonb_build_object('team', 'team-' || ((i / 5) % 5), 'env', 'prod'),
             -- One run in four is a coding session: 20 projects, 50 machines.
             CASE WHEN (i / 5) % 4 = 0 THEN $6 || '-run-' || (i / 5) END,
             CASE WHEN (i / 5) % 4 = 0 THEN 'github.com/e2e/repo-' || ((i / 5) % 20) END,
             CASE WHEN (i / 5) % 4 = 0 THEN 'machine-' || ((i / 20) % 50) END,
             CASE WHEN (i / 5) % 4 = 0
                  THEN 'ws-' || ((i / 20) % 50) || '-' || ((i / 5) % 20) END
         FROM generate_series(0::int8, $5::int8 - 1) AS i",
    )
    .bind(n as f64)
    .bind(n as f64)
    .bind(days as f64)
    .bind(agents)
    .bind(n)
    .bind(org)
    .execute(&mut *conn)
    .await
    .context("events")?;
    // The levels, the per-tag levels and the runs as the writer folds them.
    let tag_keys = storage::StorageConfig::default().tag_keys;
    storage::fold_history(&mut conn, org, &tag_keys, &all, storage::Fold::All, |_| {})
        .await
        .context("levels and runs")?;
    // Agents with their latest day's totals.
    sqlx::query(storage::agents_from_events_sql())
        .bind(org)
        .execute(&mut *conn)
        .await
        .context("agents")?;
    // The coding-agent hierarchy, as the writer keeps it.
    for sql in agentops_projections::hierarchy_from_events_sql() {
        sqlx::query(&sql)
            .bind(org)
            .execute(&mut *conn)
            .await
            .context("hierarchy")?;
    }
    // Its derived tables are built above: nothing for a deriver to fold.
    storage::deferred::mark_all_derived(&mut conn).await?;
    Ok(())
}

/// Alerts (with history) and policy violations of `org`, a year's worth.
pub async fn load_governance(pool: &PgPool, org: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message, created_at,
                             source, scope_key, state, severity, resolved_at)
         SELECT $1 || '-alert-' || i, $1, 'budget', 'day', 100, 120, 'over budget',
                now() - make_interval(mins => i * 5), 'budget', 'agent-' || (i % 50),
                CASE WHEN i < 20 THEN 'firing' WHEN i < 40 THEN 'acknowledged' ELSE 'resolved' END,
                'warning', CASE WHEN i >= 40 THEN now() - make_interval(mins => i * 5 - 1) END
         FROM generate_series(0, 40000) AS i",
    )
    .bind(org)
    .execute(pool)
    .await
    .context("alerts")?;
    sqlx::query(
        "INSERT INTO alert_history (alert_id, at, state, actor, note)
         SELECT alert_id, created_at, state, 'system', '' FROM alerts WHERE org_id = $1",
    )
    .bind(org)
    .execute(pool)
    .await
    .context("alert_history")?;
    sqlx::query(
        "INSERT INTO policy_violations (policy_id, event_id, org_id, agent_id, run_id, ts, action,
                                        detail, event)
         SELECT gen_random_uuid(), gen_random_uuid(), $1, 'agent-' || (i % 50), $1 || '-run-' || i,
                now() - make_interval(mins => i), 'block', 'model not allowed', '{}'
         FROM generate_series(0, 40000) AS i",
    )
    .bind(org)
    .execute(pool)
    .await
    .context("policy_violations")?;
    sqlx::query(
        "INSERT INTO alert_deliveries (alert_id, channel_id, transition, attempts, delivered_at)
         SELECT alert_id, gen_random_uuid(), 'firing', 1, created_at FROM alerts WHERE org_id = $1",
    )
    .bind(org)
    .execute(pool)
    .await
    .context("alert_deliveries")?;
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor, action, detail, at)
         SELECT $1, 'key:admin', 'budget.update', 'limit changed', now() - make_interval(mins => i)
         FROM generate_series(0, 40000) AS i",
    )
    .bind(org)
    .execute(pool)
    .await
    .context("audit_log")?;
    Ok(())
}

/// What a long-lived platform holds beyond the raw events' 30 days: the
/// older months of the day and hour levels (the aggregates outlive the
/// events; copies of the loaded month, shifted back), and the agents of
/// many other orgs.
pub async fn load_older(pool: &PgPool) -> Result<()> {
    let names: Vec<&str> = storage::aggregates()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let names = names.join(", ");
    let dims = |rel: &str| {
        storage::LEVELS
            .iter()
            .chain(&storage::TAG_LEVELS)
            .find(|l| l.name == rel)
            .map(|l| l.dims_list(""))
            .unwrap_or_default()
    };
    // Plain mode: the hour levels' partitions of those months.
    let today = chrono::Utc::now().date_naive();
    let days: Vec<_> = (today - chrono::Days::new(31 * 2 + 40))
        .iter_days()
        .take_while(|d| *d <= today)
        .collect();
    let monthly = storage::partitioned().filter(|p| p.period == storage::Period::Month);
    storage::ensure_partitions_of(&mut *pool.acquire().await?, monthly, &days).await?;
    let older = storage::LEVELS
        .iter()
        .chain(&storage::TAG_LEVELS)
        .filter_map(|l| match l.width {
            "1 day" => Some((l.name, 11)),
            "1 hour" => Some((l.name, 2)),
            _ => None,
        });
    for (rel, months) in older {
        let dims = dims(rel);
        let sql = format!(
            "INSERT INTO {rel} (org_id, bucket{dims}, {names})
             SELECT org_id, bucket - make_interval(days => 31 * k){dims}, {names}
             FROM {rel}, generate_series(1, {months}) AS k"
        );
        sqlx::raw_sql(&sql)
            .execute(pool)
            .await
            .with_context(|| format!("older {rel}"))?;
    }
    // The org levels hold a row per bucket and org: other orgs' rows
    // (copies) make them as long as a multi-tenant database's.
    for (rel, tenants) in [("agg_org_1d", 100), ("agg_org_1h", 10), ("agg_org_1m", 2)] {
        let sql = format!(
            "INSERT INTO {rel} (org_id, bucket, {names})
             SELECT 'tenant-' || k || '-' || org_id, bucket, {names}
             FROM {rel}, generate_series(1, {tenants}) AS k"
        );
        sqlx::raw_sql(&sql)
            .execute(pool)
            .await
            .with_context(|| format!("other orgs in {rel}"))?;
    }
    // The dimensioned hour levels' monthly partitions (plain mode) hold
    // every org's month: a window covering a partition whole reads it
    // through the index where the org is one of many (as on a shared
    // platform), not where it is the only one. Other orgs' copies of the
    // partitions a 30-day window touches.
    for l in storage::LEVELS
        .iter()
        .chain(&storage::TAG_LEVELS)
        .filter(|l| l.width == "1 hour" && !l.dims.is_empty())
    {
        let (rel, dims) = (l.name, l.dims_list(""));
        sqlx::raw_sql(&format!(
            "INSERT INTO {rel} (org_id, bucket{dims}, {names})
             SELECT 'tenant-' || k || '-' || org_id, bucket{dims}, {names}
             FROM {rel}, generate_series(1, 10) AS k
             WHERE bucket >= now() - interval '40 days'"
        ))
        .execute(pool)
        .await
        .with_context(|| format!("other orgs in {rel}"))?;
    }
    sqlx::query(
        "INSERT INTO agents (org_id, agent_id, first_seen, last_seen, day)
         SELECT 'tenant-' || (i % 100), 'agent-' || i, now() - interval '30 days', now(), current_date
         FROM generate_series(0, 50000) AS i",
    )
    .execute(pool)
    .await
    .context("other agents")?;
    Ok(())
}
