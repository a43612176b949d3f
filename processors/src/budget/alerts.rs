//! The alert a budget crossing raises.

use agentops_governance::alert::{budget_alert_id, AlertSource};
use agentops_governance::period_key;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::alert::{Alert, Transition};
use crate::governance::{channel_names, Budget};

/// The alert for `b` at `pct` percent in the period of `now`.
pub(crate) fn budget_alert(
    b: &Budget,
    now: DateTime<Utc>,
    pct: f64,
    spend: f64,
    paused: &[String],
) -> Alert {
    let period = period_key(b.period, now);
    let exceeded = pct >= 100.0;
    let kind = if exceeded {
        "budget_exceeded"
    } else {
        "budget_warn"
    };
    let used = 100.0 * spend / b.limit_usd;
    let mut message = format!(
        "Budget '{}' ({}, {} {period}): ${spend:.2} of ${:.2} spent ({used:.0}%), {} threshold {pct}% crossed",
        b.name,
        b.scope.scope_key(),
        b.period.as_str(),
        b.limit_usd,
        if exceeded { "exceeded" } else { "warning" },
    );
    let scope_paused = b.scope.kind().is_hierarchy() && !paused.is_empty();
    if scope_paused {
        message.push_str(&format!("; paused {}", b.scope.scope_key()));
    } else if !paused.is_empty() {
        message.push_str(&format!("; paused {} agent(s)", paused.len()));
    }
    let paused_agents: &[String] = if scope_paused { &[] } else { paused };
    Alert {
        alert_id: budget_alert_id(&b.id, &period, pct),
        org_id: b.org_id.clone(),
        source: AlertSource::Budget.as_str().into(),
        source_id: Some(b.id.clone()),
        kind: kind.into(),
        scope_key: b.scope.scope_key(),
        transition: Transition::Firing,
        severity: if exceeded { "critical" } else { "warning" }.into(),
        period,
        threshold: b.limit_usd * pct / 100.0,
        value: spend,
        message,
        details: json!({
            "budget": b.name, "limit_usd": b.limit_usd, "percent": pct,
            "used_percent": used, "unit": "usd", "paused_agents": paused_agents,
            "paused_scope": scope_paused.then(|| b.scope.scope_key()),
        }),
        channels: channel_names(&b.channels),
        occurred_at: now,
    }
}
