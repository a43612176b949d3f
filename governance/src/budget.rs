//! Budgets: the spend of a scope (org, agent, workflow, model, or an event
//! attribute `tag` `key=value`) per UTC day, week (from Monday) or month;
//! alerts fire at each threshold (percent of the limit, default 80 and 100)
//! and, with `pause_at_pct`, the agents in scope are paused.

use serde_json::json;

use crate::config::Configuration;
use crate::fields::{
    bad, channel_ids, name, one_of, opt_positive, present, put_scope, scope, FieldError, Obj,
};
use crate::scope::{Period, Scope, ScopeKind};

/// Largest accepted limit (USD).
pub const MAX_USD: f64 = 1e12;
/// Smallest accepted limit (a hundredth of a cent), so that the percent of
/// any spend stays a finite number (a subnormal limit made it infinite).
pub const MIN_USD: f64 = 0.0001;
/// Largest accepted percent (thresholds, pause).
pub const MAX_PCT: f64 = 1000.0;

/// A budget (a row of `budgets`).
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub name: String,
    pub scope: Scope,
    pub period: Period,
    pub limit_usd: f64,
    /// Percents of the limit, ascending, no duplicates, non-empty.
    pub thresholds: Vec<f64>,
    pub pause_at_pct: Option<f64>,
    pub channels: Vec<uuid::Uuid>,
}

impl Budget {
    /// The percent of the limit `spend_usd` is.
    pub fn percent(&self, spend_usd: f64) -> f64 {
        spend_usd / self.limit_usd * 100.0
    }

    /// The thresholds reached at `pct`.
    pub fn crossed(&self, pct: f64) -> Vec<f64> {
        self.thresholds
            .iter()
            .copied()
            .filter(|t| pct >= *t)
            .collect()
    }

    /// Whether the pause threshold is reached at `pct`.
    pub fn pause_reached(&self, pct: f64) -> bool {
        self.pause_at_pct.is_some_and(|p| pct >= p)
    }
}

/// Thresholds: percents in (0, 1000], sorted, deduplicated; default [80, 100].
fn thresholds(m: &Obj) -> Result<Vec<f64>, FieldError> {
    let Some(v) = present(m, "thresholds") else {
        return Ok(vec![80.0, 100.0]);
    };
    let msg = "expected a non-empty array of percents, each above 0 and at most 1000";
    let items = v
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= 20)
        .ok_or_else(|| bad("thresholds", msg))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let x = item
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0 && *x <= MAX_PCT)
            .ok_or_else(|| bad("thresholds", msg))?;
        out.push(x);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

impl Configuration for Budget {
    const TABLE: &'static str = "budgets";
    const NOUN: &'static str = "budget";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "scope_kind",
        "scope_value",
        "period",
        "limit_usd",
        "thresholds",
        "pause_at_pct",
        "channels",
    ];
    const FIXED: &'static [&'static str] = &[];

    fn from_fields(m: &Obj) -> Result<Budget, FieldError> {
        Ok(Budget {
            name: name(m)?,
            scope: scope(m, ScopeKind::ALL)?,
            period: one_of(m, "period", None)?,
            limit_usd: match opt_positive(m, "limit_usd", MAX_USD)? {
                Some(x) if x >= MIN_USD => x,
                Some(_) => return Err(bad("limit_usd", format!("at least {MIN_USD}"))),
                None => return Err(bad("limit_usd", "required: a number above 0")),
            },
            thresholds: thresholds(m)?,
            pause_at_pct: opt_positive(m, "pause_at_pct", MAX_PCT)?,
            channels: channel_ids(m)?,
        })
    }

    fn columns(&self) -> Obj {
        let mut out = Obj::new();
        out.insert("name".into(), self.name.clone().into());
        put_scope(&mut out, &self.scope);
        out.insert("period".into(), self.period.as_str().into());
        out.insert("limit_usd".into(), self.limit_usd.into());
        out.insert("thresholds".into(), json!(self.thresholds));
        out.insert("pause_at_pct".into(), json!(self.pause_at_pct));
        out.insert("channels".into(), json!(self.channels));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::normalize;
    use serde_json::Value;

    fn v(body: Value) -> Result<Obj, FieldError> {
        normalize::<Budget>(body.as_object().unwrap())
    }

    fn field(r: Result<Obj, FieldError>) -> &'static str {
        r.unwrap_err().field
    }

    #[test]
    fn budgets_normalize() {
        let b = v(json!({"name": "org daily", "period": "day", "limit_usd": 50})).unwrap();
        assert_eq!(b["scope_kind"], json!("org"));
        assert_eq!(b["scope_value"], Value::Null);
        assert_eq!(b["thresholds"], json!([80.0, 100.0]));
        assert_eq!(b["pause_at_pct"], Value::Null);
        assert_eq!(b["channels"], json!([]));
        assert_eq!(b.len(), Budget::FIELDS.len());
        let b = v(
            json!({"name": "pay", "scope_kind": "tag", "scope_value": "team=pay",
                         "period": "month", "limit_usd": 1000.5,
                         "thresholds": [100, 50, 100, 120.5], "pause_at_pct": 150}),
        )
        .unwrap();
        assert_eq!(b["thresholds"], json!([50.0, 100.0, 120.5]));
        assert_eq!(b["pause_at_pct"], json!(150.0));
        let typed = Budget::from_fields(&b).unwrap();
        assert_eq!(typed.period, Period::Month);
        assert_eq!(typed.crossed(typed.percent(600.0)), vec![50.0]);
        assert!(!typed.pause_reached(149.0));
        assert!(typed.pause_reached(150.0));
        assert_eq!(Budget::from_fields(&typed.columns()), Ok(typed));
    }

    #[test]
    fn bad_budgets_name_their_field() {
        let ok = json!({"name": "b", "period": "week", "limit_usd": 5});
        let with = |k: &str, val: Value| {
            let mut b = ok.clone();
            b[k] = val;
            v(b)
        };
        assert!(v(ok.clone()).is_ok());
        assert_eq!(field(with("period", json!("year"))), "period");
        assert_eq!(field(with("limit_usd", json!(0))), "limit_usd");
        assert_eq!(field(with("limit_usd", json!(5e-324))), "limit_usd");
        assert_eq!(field(with("limit_usd", json!(-3))), "limit_usd");
        assert_eq!(field(with("limit_usd", json!("5"))), "limit_usd");
        assert_eq!(field(with("limit_usd", Value::Null)), "limit_usd");
        assert_eq!(field(with("thresholds", json!([]))), "thresholds");
        assert_eq!(field(with("thresholds", json!([0]))), "thresholds");
        assert_eq!(field(with("thresholds", json!([1001]))), "thresholds");
        assert_eq!(field(with("thresholds", json!(80))), "thresholds");
        assert_eq!(field(with("pause_at_pct", json!(0))), "pause_at_pct");
        assert_eq!(field(with("channels", json!(["x"]))), "channels");
        assert_eq!(field(with("scope_kind", json!("tag"))), "scope_value");
        assert_eq!(field(with("scope_value", json!("a1"))), "scope_value");
        assert_eq!(field(with("name", json!(""))), "name");
    }
}
