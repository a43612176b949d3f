//! Alert rules. What each kind watches and the fields it needs:
//!
//! | kind | fields | scopes |
//! |---|---|---|
//! | `cost_per_day` | `threshold` (USD > 0) | any, `tag` included |
//! | `error_rate` | `threshold` (0 < ratio ≤ 1), `window_secs`, `min_runs` (≥ 1, default 1) | org, agent, workflow, model |
//! | `latency_p95` | `threshold` (ms > 0), `window_secs`, `min_runs` | org, agent, workflow, model |
//! | `no_heartbeat` | `minutes` | org, agent, workflow |
//! | `stuck_run` | `minutes` | org, agent, workflow |
//!
//! Common: `name`, `scope_kind` / `scope_value`, `cooldown_secs` (default
//! 3600), `channels`, `enabled` (default true). A field the kind does not use
//! is refused; `kind` cannot change on update.

use serde_json::{json, Value};

use crate::config::Configuration;
use crate::fields::{
    bad, channel_ids, name, one_of, opt_bool, opt_f64, opt_int, put_scope, scope, unused,
    FieldError, Obj,
};
use crate::scope::{Scope, ScopeKind};
use crate::vocabulary::vocabulary;

vocabulary! {
    /// What an alert rule watches (the `alert_rules.kind` column).
    pub enum RuleKind ("rule kind") {
        CostPerDay = "cost_per_day",
        ErrorRate = "error_rate",
        NoHeartbeat = "no_heartbeat",
        LatencyP95 = "latency_p95",
        StuckRun = "stuck_run",
    }
}

impl RuleKind {
    /// The scope kinds a rule of this kind may have: the aggregates behind
    /// error rate and latency have no attributes, heartbeats and runs no
    /// model.
    pub fn scopes(self) -> &'static [ScopeKind] {
        use ScopeKind::*;
        match self {
            // Spend reads every scope kind (the hierarchy's from `events`).
            RuleKind::CostPerDay => ScopeKind::ALL,
            RuleKind::ErrorRate | RuleKind::LatencyP95 => &[Org, Agent, Workflow, Model],
            RuleKind::NoHeartbeat | RuleKind::StuckRun => &[Org, Agent, Workflow],
        }
    }
}

/// A rule's condition, with the parameters its kind needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Spend since UTC midnight above `usd`.
    CostPerDay { usd: f64 },
    /// Failed / finished runs in the window above `ratio`, once there are
    /// `min_runs`.
    ErrorRate {
        ratio: f64,
        window_secs: i32,
        min_runs: i32,
    },
    /// p95 run latency in the window above `ms`, once there are `min_runs`.
    LatencyP95 {
        ms: f64,
        window_secs: i32,
        min_runs: i32,
    },
    /// An agent silent for `minutes`.
    NoHeartbeat { minutes: i32 },
    /// A run open for `minutes`.
    StuckRun { minutes: i32 },
}

impl Condition {
    pub fn kind(&self) -> RuleKind {
        match self {
            Condition::CostPerDay { .. } => RuleKind::CostPerDay,
            Condition::ErrorRate { .. } => RuleKind::ErrorRate,
            Condition::LatencyP95 { .. } => RuleKind::LatencyP95,
            Condition::NoHeartbeat { .. } => RuleKind::NoHeartbeat,
            Condition::StuckRun { .. } => RuleKind::StuckRun,
        }
    }

    /// The `threshold` column (USD, ratio or milliseconds).
    pub fn threshold(&self) -> Option<f64> {
        match *self {
            Condition::CostPerDay { usd } => Some(usd),
            Condition::ErrorRate { ratio, .. } => Some(ratio),
            Condition::LatencyP95 { ms, .. } => Some(ms),
            _ => None,
        }
    }

    /// The `window_secs` column.
    pub fn window_secs(&self) -> Option<i32> {
        match *self {
            Condition::ErrorRate { window_secs, .. }
            | Condition::LatencyP95 { window_secs, .. } => Some(window_secs),
            _ => None,
        }
    }

    /// The `min_runs` column (1 for kinds without it).
    pub fn min_runs(&self) -> i32 {
        match *self {
            Condition::ErrorRate { min_runs, .. } | Condition::LatencyP95 { min_runs, .. } => {
                min_runs
            }
            _ => 1,
        }
    }

    /// The `minutes` column.
    pub fn minutes(&self) -> Option<i32> {
        match *self {
            Condition::NoHeartbeat { minutes } | Condition::StuckRun { minutes } => Some(minutes),
            _ => None,
        }
    }

    /// The figure an alert reports as its threshold: `threshold`, else
    /// `minutes`.
    pub fn alert_threshold(&self) -> f64 {
        self.threshold()
            .or(self.minutes().map(f64::from))
            .unwrap_or(0.0)
    }
}

/// An alert rule (a row of `alert_rules`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub scope: Scope,
    pub condition: Condition,
    pub cooldown_secs: i32,
    pub channels: Vec<uuid::Uuid>,
    pub enabled: bool,
}

impl Rule {
    pub fn kind(&self) -> RuleKind {
        self.condition.kind()
    }
}

const WEEK_SECS: i64 = 7 * 86_400;
const MONTH_MINUTES: i64 = 30 * 1440;

fn required<T>(v: Option<T>, field: &'static str, what: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| bad(field, format!("required: {what}")))
}

/// Whole numbers within the ranges checked fit `i32`.
fn small(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn condition(m: &Obj, kind: RuleKind) -> Result<Condition, FieldError> {
    let k = kind.as_str();
    let threshold = |ok: fn(f64) -> bool, what: &str| {
        required(
            opt_f64(m, "threshold")?.filter(|t| ok(*t)),
            "threshold",
            what,
        )
    };
    let windowed = || -> Result<(i32, i32), FieldError> {
        let window = required(
            opt_int(m, "window_secs", 60, WEEK_SECS)?,
            "window_secs",
            "seconds, 60 to 604800",
        )?;
        let min_runs = opt_int(m, "min_runs", 1, 1_000_000)?.unwrap_or(1);
        unused(m, "minutes", k, None)?;
        Ok((small(window), small(min_runs)))
    };
    let minutes = || -> Result<i32, FieldError> {
        let minutes = required(
            opt_int(m, "minutes", 1, MONTH_MINUTES)?,
            "minutes",
            "a whole number of minutes, 1 to 43200",
        )?;
        unused(m, "threshold", k, None)?;
        unused(m, "window_secs", k, None)?;
        unused(m, "min_runs", k, Some(&json!(1)))?;
        Ok(small(minutes))
    };
    Ok(match kind {
        RuleKind::CostPerDay => {
            let usd = threshold(|t| t > 0.0, "USD above 0")?;
            unused(m, "window_secs", k, None)?;
            unused(m, "min_runs", k, Some(&json!(1)))?;
            unused(m, "minutes", k, None)?;
            Condition::CostPerDay { usd }
        }
        RuleKind::ErrorRate => {
            let ratio = threshold(|t| t > 0.0 && t <= 1.0, "a ratio above 0, at most 1")?;
            let (window_secs, min_runs) = windowed()?;
            Condition::ErrorRate {
                ratio,
                window_secs,
                min_runs,
            }
        }
        RuleKind::LatencyP95 => {
            let ms = threshold(|t| t > 0.0, "milliseconds above 0")?;
            let (window_secs, min_runs) = windowed()?;
            Condition::LatencyP95 {
                ms,
                window_secs,
                min_runs,
            }
        }
        RuleKind::NoHeartbeat => Condition::NoHeartbeat {
            minutes: minutes()?,
        },
        RuleKind::StuckRun => Condition::StuckRun {
            minutes: minutes()?,
        },
    })
}

impl Configuration for Rule {
    const TABLE: &'static str = "alert_rules";
    const NOUN: &'static str = "alert_rule";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "kind",
        "scope_kind",
        "scope_value",
        "threshold",
        "window_secs",
        "min_runs",
        "minutes",
        "cooldown_secs",
        "channels",
        "enabled",
    ];
    const FIXED: &'static [&'static str] = &["kind"];

    fn from_fields(m: &Obj) -> Result<Rule, FieldError> {
        let name = name(m)?;
        let kind: RuleKind = one_of(m, "kind", None)?;
        let scope = scope(m, kind.scopes())?;
        let condition = condition(m, kind)?;
        Ok(Rule {
            name,
            scope,
            condition,
            cooldown_secs: small(opt_int(m, "cooldown_secs", 0, WEEK_SECS)?.unwrap_or(3600)),
            channels: channel_ids(m)?,
            enabled: opt_bool(m, "enabled")?.unwrap_or(true),
        })
    }

    fn columns(&self) -> Obj {
        let c = &self.condition;
        let mut out = Obj::new();
        out.insert("name".into(), self.name.clone().into());
        out.insert("kind".into(), c.kind().as_str().into());
        put_scope(&mut out, &self.scope);
        out.insert("threshold".into(), json!(c.threshold()));
        out.insert("window_secs".into(), json!(c.window_secs()));
        out.insert("min_runs".into(), json!(c.min_runs()));
        out.insert("minutes".into(), json!(c.minutes()));
        out.insert("cooldown_secs".into(), json!(self.cooldown_secs));
        out.insert("channels".into(), json!(self.channels));
        out.insert("enabled".into(), Value::Bool(self.enabled));
        out
    }

    fn enabled(&self) -> bool {
        self.enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::normalize;

    fn v(body: Value) -> Result<Obj, FieldError> {
        normalize::<Rule>(body.as_object().unwrap())
    }

    fn field(r: Result<Obj, FieldError>) -> &'static str {
        r.unwrap_err().field
    }

    #[test]
    fn rules_per_kind() {
        let r = v(
            json!({"name": "spend", "kind": "cost_per_day", "threshold": 25,
                         "scope_kind": "tag", "scope_value": "team=pay"}),
        )
        .unwrap();
        assert_eq!(r["cooldown_secs"], json!(3600));
        assert_eq!(r["enabled"], json!(true));
        assert_eq!(r["window_secs"], Value::Null);
        assert_eq!(r.len(), Rule::FIELDS.len());
        let r = v(
            json!({"name": "errs", "kind": "error_rate", "threshold": 0.2,
                         "window_secs": 900, "min_runs": 10, "enabled": false,
                         "cooldown_secs": 0}),
        )
        .unwrap();
        assert_eq!(r["min_runs"], json!(10));
        assert_eq!(r["cooldown_secs"], json!(0));
        assert_eq!(r["enabled"], json!(false));
        let r = v(
            json!({"name": "p95", "kind": "latency_p95", "threshold": 5000,
                         "window_secs": 600, "scope_kind": "model", "scope_value": "gpt-4o"}),
        )
        .unwrap();
        assert_eq!(r["min_runs"], json!(1));
        let r = v(json!({"name": "hb", "kind": "no_heartbeat", "minutes": 10,
                         "scope_kind": "agent", "scope_value": "a1"}))
        .unwrap();
        assert_eq!(r["threshold"], Value::Null);
        assert_eq!(r["minutes"], json!(10));
        // A stored row (min_runs 1) validates again after a PUT merge.
        assert!(Rule::from_fields(&r).is_ok());
        assert!(v(json!({"name": "s", "kind": "stuck_run", "minutes": 60})).is_ok());
    }

    #[test]
    fn bad_rules_name_their_field() {
        assert_eq!(field(v(json!({"name": "x", "kind": "cpu"}))), "kind");
        assert_eq!(field(v(json!({"name": "x"}))), "kind");
        assert_eq!(
            field(v(json!({"name": "x", "kind": "cost_per_day"}))),
            "threshold"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "cost_per_day", "threshold": -1})
            )),
            "threshold"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "error_rate", "threshold": 1.5,
                           "window_secs": 60})
            )),
            "threshold"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "error_rate", "threshold": 0.5})
            )),
            "window_secs"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "error_rate", "threshold": 0.5,
                           "window_secs": 60, "min_runs": 0})
            )),
            "min_runs"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "latency_p95", "threshold": 10,
                           "window_secs": 10})
            )),
            "window_secs"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "no_heartbeat"}))),
            "minutes"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "stuck_run", "minutes": 0}))),
            "minutes"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "stuck_run", "minutes": 5, "threshold": 1})
            )),
            "threshold"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "cost_per_day", "threshold": 1,
                           "minutes": 5})
            )),
            "minutes"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "error_rate", "threshold": 0.5,
                           "window_secs": 60, "scope_kind": "tag", "scope_value": "a=b"})
            )),
            "scope_kind"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "no_heartbeat", "minutes": 5,
                           "scope_kind": "model", "scope_value": "m"}))),
            "scope_kind"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "stuck_run", "minutes": 5,
                           "cooldown_secs": -1}))),
            "cooldown_secs"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "stuck_run", "minutes": 5,
                           "enabled": "yes"}))),
            "enabled"
        );
    }
}
