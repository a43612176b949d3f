//! Business gauges on `/metrics`, read from the store every
//! `business_metrics_interval_secs` (30 s; 0 turns them off): per org (never
//! per agent or event; at most `MAX_ORG_LABELS` orgs, the rest summed under
//! `_other`, see `agentops_runtime::telemetry::org_label`)
//!
//! - `agentops_org_spend_usd{org, period="day"|"month"}`: spend of the
//!   current UTC day and month (the org levels, exactly-once figures);
//! - `agentops_org_unpriced_calls{org, period="day"}`: calls of the day with
//!   tokens but no price;
//! - `agentops_budget_used_percent{org, budget}`: each enabled budget's spend
//!   in its current period, in percent of its limit (the same reading as
//!   `GET /v1/budgets/status`); at most [`MAX_BUDGETS`] budgets;
//! - `agentops_alerts_firing{org}`: alerts in state `firing`;
//! - `agentops_agents_controlled{org, action="pause"|"kill"}`: agents paused
//!   or killed now.
//!
//! A series whose org no longer has a row is set to 0 (never left at its
//! last value). Every query API instance exports the same figures: take
//! `max by (...)` across instances.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use agentops_governance::spend::spend_in_scope;
use agentops_governance::{load, period_end, period_start, Budget, Period};
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::telemetry::org_label;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Most budgets given a gauge (the first by org and name).
pub(crate) const MAX_BUDGETS: usize = 2000;

type Labels = Vec<(&'static str, String)>;

/// One pass's values, by metric and label set (summed per label set, so the
/// orgs folded into `_other` add up).
#[derive(Default)]
struct Values(HashMap<(&'static str, Labels), f64>);

impl Values {
    fn add(&mut self, metric: &'static str, labels: Labels, v: f64) {
        *self.0.entry((metric, labels)).or_default() += v;
    }
}

/// The series set by the last pass (to zero those that disappeared).
#[derive(Default)]
pub(crate) struct Gauges {
    reported: HashSet<(&'static str, Labels)>,
}

impl Gauges {
    fn publish(&mut self, values: Values) {
        let now: HashSet<(&'static str, Labels)> = values.0.keys().cloned().collect();
        for gone in self.reported.difference(&now) {
            set(gone.0, &gone.1, 0.0);
        }
        for ((metric, labels), v) in &values.0 {
            set(metric, labels, *v);
        }
        self.reported = now;
    }
}

fn set(metric: &'static str, labels: &Labels, v: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(metric, labels).set(v);
}

/// One reading of every gauge.
async fn read(pool: &PgPool, now: DateTime<Utc>) -> Result<Values, sqlx::Error> {
    let mut out = Values::default();
    let mut conn = pool.acquire().await?;
    let (day, month) = (
        period_start(Period::Day, now),
        period_start(Period::Month, now),
    );
    // Whole days of the month from the day level, today from the hours.
    let rows: Vec<(String, f64, f64, i64)> = sqlx::query_as(
        "SELECT org_id,
                COALESCE(sum(cost_usd) FILTER (WHERE bucket >= $2), 0)::float8,
                COALESCE(sum(cost_usd), 0)::float8,
                COALESCE(sum(unpriced_calls) FILTER (WHERE bucket >= $2), 0)::int8
         FROM (SELECT org_id, bucket, cost_usd, unpriced_calls FROM agg_org_1d
               WHERE bucket >= $1 AND bucket < $2
               UNION ALL
               SELECT org_id, bucket, cost_usd, unpriced_calls FROM agg_org_1h
               WHERE bucket >= $2) s
         GROUP BY org_id",
    )
    .bind(month)
    .bind(day)
    .fetch_all(&mut *conn)
    .await?;
    for (org, today, this_month, unpriced) in rows {
        let org = org_label(&org);
        let p = |p: &str| vec![("org", org.clone()), ("period", p.to_owned())];
        out.add("agentops_org_spend_usd", p("day"), today);
        out.add("agentops_org_spend_usd", p("month"), this_month);
        out.add("agentops_org_unpriced_calls", p("day"), unpriced as f64);
    }
    let firing: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, count(*) FROM alerts WHERE state = 'firing' GROUP BY org_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (org, n) in firing {
        out.add(
            "agentops_alerts_firing",
            vec![("org", org_label(&org))],
            n as f64,
        );
    }
    let controlled: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT org_id, action, count(*) FROM agent_controls GROUP BY org_id, action",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (org, action, n) in controlled {
        let labels = vec![("org", org_label(&org)), ("action", action)];
        out.add("agentops_agents_controlled", labels, n as f64);
    }
    let budgets = load::<Budget>(&mut conn, None, true).await?;
    if budgets.len() > MAX_BUDGETS {
        tracing::warn!(
            budgets = budgets.len(),
            max = MAX_BUDGETS,
            "more budgets than gauges: the first by org and name are exported"
        );
    }
    for b in budgets.into_iter().take(MAX_BUDGETS) {
        let org = org_label(&b.org_id);
        if org != b.org_id {
            continue; // a percent does not sum: no `_other` budget
        }
        let (start, end) = (period_start(b.period, now), period_end(b.period, now));
        let spent = spend_in_scope(&mut conn, &b.org_id, &b.scope, start, Some(end)).await?;
        let labels = vec![("org", org), ("budget", b.name.clone())];
        out.add("agentops_budget_used_percent", labels, b.percent(spent));
    }
    Ok(out)
}

/// Refresh the gauges every `interval` until shutdown; a failed reading is
/// logged and the last values stand until the next one.
pub(crate) async fn run(
    pool: PgPool,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut gauges = Gauges::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        match read(&pool, Utc::now()).await {
            Ok(values) => gauges.publish(values),
            Err(e) => tracing::warn!(error = %e, "business gauges not read; keeping the last"),
        }
    }
}
