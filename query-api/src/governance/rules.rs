//! Alert rules (`/v1/admin/alert-rules`). Fields each kind needs:
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
//! is refused; `kind` cannot change on `PUT`.

use agentops_runtime::governance::ScopeKind;
use serde_json::{json, Value};

use super::crud::{Resource, ROW_JSON};
use super::fields::{
    bad, channel_ids, name, one_of, opt_bool, opt_f64, opt_int, put_scope, scope, unused, Obj,
};
use crate::error::ApiError;

pub(crate) static RULES: Resource = Resource {
    table: "alert_rules",
    list_key: "alert_rules",
    noun: "alert_rule",
    fields: &[
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
    ],
    fixed: &["kind"],
    validate,
    output: ROW_JSON,
    on_delete: &[],
    updatable: true,
};

const KINDS: [&str; 5] = [
    "cost_per_day",
    "error_rate",
    "no_heartbeat",
    "latency_p95",
    "stuck_run",
];
const WEEK_SECS: i64 = 7 * 86_400;
const MONTH_MINUTES: i64 = 30 * 1440;

fn required<T>(v: Option<T>, field: &'static str, what: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| bad(field, format!("required: {what}")))
}

fn validate(m: &Obj) -> Result<Obj, ApiError> {
    use ScopeKind::*;
    let name = name(m)?;
    let kind = one_of(m, "kind", &KINDS, None)?;
    let k = kind.as_str();
    let scopes: &[ScopeKind] = match k {
        "cost_per_day" => &ScopeKind::ALL,
        "error_rate" | "latency_p95" => &[Org, Agent, Workflow, Model],
        _ => &[Org, Agent, Workflow],
    };
    let scope = scope(m, scopes)?;
    let (mut threshold, mut window, mut min_runs, mut minutes) = (None, None, 1, None);
    match k {
        "cost_per_day" | "error_rate" | "latency_p95" => {
            let t = opt_f64(m, "threshold")?;
            threshold = Some(match k {
                "cost_per_day" => required(t.filter(|t| *t > 0.0), "threshold", "USD above 0")?,
                "error_rate" => required(
                    t.filter(|t| *t > 0.0 && *t <= 1.0),
                    "threshold",
                    "a ratio above 0, at most 1",
                )?,
                _ => required(t.filter(|t| *t > 0.0), "threshold", "milliseconds above 0")?,
            });
            if k == "cost_per_day" {
                unused(m, "window_secs", k, None)?;
                unused(m, "min_runs", k, Some(&json!(1)))?;
            } else {
                window = Some(required(
                    opt_int(m, "window_secs", 60, WEEK_SECS)?,
                    "window_secs",
                    "seconds, 60 to 604800",
                )?);
                min_runs = opt_int(m, "min_runs", 1, 1_000_000)?.unwrap_or(1);
            }
            unused(m, "minutes", k, None)?;
        }
        _ => {
            minutes = Some(required(
                opt_int(m, "minutes", 1, MONTH_MINUTES)?,
                "minutes",
                "a whole number of minutes, 1 to 43200",
            )?);
            unused(m, "threshold", k, None)?;
            unused(m, "window_secs", k, None)?;
            unused(m, "min_runs", k, Some(&json!(1)))?;
        }
    }
    let cooldown = opt_int(m, "cooldown_secs", 0, WEEK_SECS)?.unwrap_or(3600);
    let mut out = Obj::new();
    out.insert("name".into(), name.into());
    out.insert("kind".into(), kind.into());
    put_scope(&mut out, &scope);
    out.insert("threshold".into(), json!(threshold));
    out.insert("window_secs".into(), json!(window));
    out.insert("min_runs".into(), json!(min_runs));
    out.insert("minutes".into(), json!(minutes));
    out.insert("cooldown_secs".into(), json!(cooldown));
    out.insert("channels".into(), json!(channel_ids(m)?));
    out.insert(
        "enabled".into(),
        Value::Bool(opt_bool(m, "enabled")?.unwrap_or(true)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::fields::field_error as field;

    fn v(body: Value) -> Result<Obj, ApiError> {
        validate(body.as_object().unwrap())
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
        assert_eq!(r.len(), RULES.fields.len());
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
        assert!(validate(&r).is_ok());
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
