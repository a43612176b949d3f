//! Policies, checked by the processors on every event:
//!
//! | kind | field |
//! |---|---|
//! | `model_allowlist`, `model_denylist` | `names`: model names (a name also matches its dated versions) |
//! | `forbidden_tools` | `names`: tool names |
//! | `max_tokens_per_call` | `limit_value`: whole tokens > 0 |
//! | `max_cost_per_run` | `limit_value`: USD > 0 |
//!
//! Common: `name`, `scope_kind` / `scope_value`, `action` (`flag` records a
//! violation, `alert` also notifies, `pause` also pauses the agent; default
//! `flag`), `channels`, `enabled`. `kind` cannot change on update.

use serde_json::{json, Value};

use crate::config::Configuration;
use crate::fields::{
    bad, channel_ids, name, one_of, opt_bool, opt_positive, put_scope, scope, str_list, unused,
    FieldError, Obj,
};
use crate::scope::{Scope, ScopeKind};
use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a policy checks (the `policies.kind` column).
    pub enum PolicyKind ("policy kind") {
        ModelAllowlist = "model_allowlist",
        ModelDenylist = "model_denylist",
        MaxTokensPerCall = "max_tokens_per_call",
        MaxCostPerRun = "max_cost_per_run",
        ForbiddenTools = "forbidden_tools",
    }
}

vocabulary! {
    /// What a violation does (the `policies.action` column).
    pub enum PolicyAction ("policy action") {
        /// Record the violation and mark the event.
        Flag = "flag",
        /// Also raise an alert.
        Alert = "alert",
        /// Also pause the agent.
        Pause = "pause",
    }
}

/// A policy's check, with what its kind needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Only these models (or their dated versions).
    ModelAllowlist(Vec<String>),
    /// Not these models (nor their dated versions).
    ModelDenylist(Vec<String>),
    /// Not these tools (case-insensitive).
    ForbiddenTools(Vec<String>),
    /// At most this many tokens (all kinds summed) in one call.
    MaxTokensPerCall(f64),
    /// At most this much USD in one run.
    MaxCostPerRun(f64),
}

impl Check {
    pub fn kind(&self) -> PolicyKind {
        match self {
            Check::ModelAllowlist(_) => PolicyKind::ModelAllowlist,
            Check::ModelDenylist(_) => PolicyKind::ModelDenylist,
            Check::ForbiddenTools(_) => PolicyKind::ForbiddenTools,
            Check::MaxTokensPerCall(_) => PolicyKind::MaxTokensPerCall,
            Check::MaxCostPerRun(_) => PolicyKind::MaxCostPerRun,
        }
    }

    /// The `names` column (empty for limits).
    pub fn names(&self) -> &[String] {
        match self {
            Check::ModelAllowlist(n) | Check::ModelDenylist(n) | Check::ForbiddenTools(n) => n,
            _ => &[],
        }
    }

    /// The `limit_value` column.
    pub fn limit(&self) -> Option<f64> {
        match *self {
            Check::MaxTokensPerCall(x) | Check::MaxCostPerRun(x) => Some(x),
            _ => None,
        }
    }
}

/// A policy (a row of `policies`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub scope: Scope,
    pub check: Check,
    pub action: PolicyAction,
    pub channels: Vec<uuid::Uuid>,
    pub enabled: bool,
}

impl Policy {
    pub fn kind(&self) -> PolicyKind {
        self.check.kind()
    }
}

/// `name` matches `model` exactly (case-insensitive), as a `provider/` path's
/// last segment, or as the prefix of a dated version (`gpt-4o` ⇒
/// `gpt-4o-2024-08-06`). Used by the model allow/deny lists.
pub fn model_matches(name: &str, model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    let model = model.rsplit('/').next().unwrap_or(&model);
    let name = name.to_ascii_lowercase();
    model == name
        || (model.len() > name.len()
            && model.starts_with(&name)
            && matches!(model.as_bytes()[name.len()], b'-' | b'@' | b':'))
}

fn check(m: &Obj, kind: PolicyKind) -> Result<Check, FieldError> {
    let k = kind.as_str();
    match kind {
        PolicyKind::MaxTokensPerCall | PolicyKind::MaxCostPerRun => {
            unused(m, "names", k, Some(&json!([])))?;
            let limit = opt_positive(m, "limit_value", 1e12)?;
            match (kind, limit) {
                (PolicyKind::MaxTokensPerCall, Some(x)) if x.fract() == 0.0 => {
                    Ok(Check::MaxTokensPerCall(x))
                }
                (PolicyKind::MaxCostPerRun, Some(x)) => Ok(Check::MaxCostPerRun(x)),
                (PolicyKind::MaxTokensPerCall, _) => Err(bad(
                    "limit_value",
                    "required: a whole number of tokens above 0",
                )),
                _ => Err(bad("limit_value", "required: USD above 0")),
            }
        }
        PolicyKind::ModelAllowlist | PolicyKind::ModelDenylist | PolicyKind::ForbiddenTools => {
            unused(m, "limit_value", k, None)?;
            let names = str_list(m, "names", 200)?;
            if names.is_empty() {
                let what = if kind == PolicyKind::ForbiddenTools {
                    "tool"
                } else {
                    "model"
                };
                return Err(bad(
                    "names",
                    format!("required: a non-empty array of {what} names"),
                ));
            }
            Ok(match kind {
                PolicyKind::ModelAllowlist => Check::ModelAllowlist(names),
                PolicyKind::ModelDenylist => Check::ModelDenylist(names),
                _ => Check::ForbiddenTools(names),
            })
        }
    }
}

impl Configuration for Policy {
    const TABLE: &'static str = "policies";
    const NOUN: &'static str = "policy";
    const FIELDS: &'static [&'static str] = &[
        "name",
        "kind",
        "scope_kind",
        "scope_value",
        "names",
        "limit_value",
        "action",
        "channels",
        "enabled",
    ];
    const FIXED: &'static [&'static str] = &["kind"];

    fn from_fields(m: &Obj) -> Result<Policy, FieldError> {
        let name = name(m)?;
        let kind: PolicyKind = one_of(m, "kind", None)?;
        // A policy pauses agents: its scope is one of the agents' kinds.
        let scope = scope(m, ScopeKind::CLASSIC)?;
        let check = check(m, kind)?;
        Ok(Policy {
            name,
            scope,
            check,
            action: one_of(m, "action", Some(PolicyAction::Flag))?,
            channels: channel_ids(m)?,
            enabled: opt_bool(m, "enabled")?.unwrap_or(true),
        })
    }

    fn columns(&self) -> Obj {
        let mut out = Obj::new();
        out.insert("name".into(), self.name.clone().into());
        out.insert("kind".into(), self.kind().as_str().into());
        put_scope(&mut out, &self.scope);
        out.insert("names".into(), json!(self.check.names()));
        out.insert("limit_value".into(), json!(self.check.limit()));
        out.insert("action".into(), self.action.as_str().into());
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
        normalize::<Policy>(body.as_object().unwrap())
    }

    fn field(r: Result<Obj, FieldError>) -> &'static str {
        r.unwrap_err().field
    }

    #[test]
    fn policies_normalize() {
        let p = v(json!({"name": "no gpt-3", "kind": "model_denylist",
                         "names": ["gpt-3.5-turbo", "gpt-3.5-turbo"]}))
        .unwrap();
        assert_eq!(p["names"], json!(["gpt-3.5-turbo"]));
        assert_eq!(p["action"], json!("flag"));
        assert_eq!(p["limit_value"], Value::Null);
        assert_eq!(p.len(), Policy::FIELDS.len());
        let p = v(
            json!({"name": "cap", "kind": "max_cost_per_run", "limit_value": 0.5,
                         "action": "pause", "scope_kind": "agent", "scope_value": "a1"}),
        )
        .unwrap();
        assert_eq!(p["names"], json!([]));
        assert!(
            Policy::from_fields(&p).is_ok(),
            "a stored row validates again"
        );
        assert!(
            v(json!({"name": "t", "kind": "max_tokens_per_call", "limit_value": 4096})).is_ok()
        );
        assert!(v(json!({"name": "t", "kind": "forbidden_tools", "names": ["shell"]})).is_ok());
    }

    #[test]
    fn bad_policies_name_their_field() {
        assert_eq!(field(v(json!({"name": "x", "kind": "nope"}))), "kind");
        assert_eq!(
            field(v(json!({"name": "x", "kind": "model_allowlist"}))),
            "names"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "model_allowlist", "names": []})
            )),
            "names"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "forbidden_tools", "names": [""]})
            )),
            "names"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "forbidden_tools", "names": ["a"],
                           "limit_value": 3})
            )),
            "limit_value"
        );
        assert_eq!(
            field(v(json!({"name": "x", "kind": "max_cost_per_run"}))),
            "limit_value"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "max_cost_per_run", "limit_value": 0})
            )),
            "limit_value"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "max_tokens_per_call", "limit_value": 1.5})
            )),
            "limit_value"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "max_cost_per_run", "limit_value": 1,
                           "names": ["a"]})
            )),
            "names"
        );
        assert_eq!(
            field(v(
                json!({"name": "x", "kind": "max_cost_per_run", "limit_value": 1,
                           "action": "kill"})
            )),
            "action"
        );
    }

    #[test]
    fn model_names_match_dated_versions() {
        assert!(model_matches("gpt-4o", "openai/GPT-4o-2024-08-06"));
        assert!(model_matches("o3", "o3"));
        assert!(!model_matches("gpt-4", "gpt-4o"));
    }
}
