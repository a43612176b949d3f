//! Policies (`/v1/admin/policies`), checked by the processors on every event:
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
//! `flag`), `channels`, `enabled`. `kind` cannot change on `PUT`.

use agentops_runtime::governance::ScopeKind;
use serde_json::{json, Value};

use super::crud::{Resource, ROW_JSON};
use super::fields::{
    bad, channel_ids, name, one_of, opt_bool, opt_positive, put_scope, scope, str_list, unused, Obj,
};
use crate::error::ApiError;

pub(crate) static POLICIES: Resource = Resource {
    table: "policies",
    list_key: "policies",
    noun: "policy",
    fields: &[
        "name",
        "kind",
        "scope_kind",
        "scope_value",
        "names",
        "limit_value",
        "action",
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
    "model_allowlist",
    "model_denylist",
    "max_tokens_per_call",
    "max_cost_per_run",
    "forbidden_tools",
];

fn validate(m: &Obj) -> Result<Obj, ApiError> {
    let name = name(m)?;
    let kind = one_of(m, "kind", &KINDS, None)?;
    let k = kind.as_str();
    let scope = scope(m, &ScopeKind::ALL)?;
    let (names, limit) = match k {
        "max_tokens_per_call" | "max_cost_per_run" => {
            unused(m, "names", k, Some(&json!([])))?;
            let limit = opt_positive(m, "limit_value", 1e12)?;
            let limit = match (k, limit) {
                ("max_tokens_per_call", Some(x)) if x.fract() == 0.0 => x,
                ("max_cost_per_run", Some(x)) => x,
                ("max_tokens_per_call", _) => {
                    return Err(bad(
                        "limit_value",
                        "required: a whole number of tokens above 0",
                    ))
                }
                _ => return Err(bad("limit_value", "required: USD above 0")),
            };
            (Vec::new(), Some(limit))
        }
        _ => {
            unused(m, "limit_value", k, None)?;
            let names = str_list(m, "names", 200)?;
            if names.is_empty() {
                let what = if k == "forbidden_tools" {
                    "tool"
                } else {
                    "model"
                };
                return Err(bad(
                    "names",
                    format!("required: a non-empty array of {what} names"),
                ));
            }
            (names, None)
        }
    };
    let action = one_of(m, "action", &["flag", "alert", "pause"], Some("flag"))?;
    let mut out = Obj::new();
    out.insert("name".into(), name.into());
    out.insert("kind".into(), kind.into());
    put_scope(&mut out, &scope);
    out.insert("names".into(), json!(names));
    out.insert("limit_value".into(), json!(limit));
    out.insert("action".into(), action.into());
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
    fn policies_normalize() {
        let p = v(json!({"name": "no gpt-3", "kind": "model_denylist",
                         "names": ["gpt-3.5-turbo", "gpt-3.5-turbo"]}))
        .unwrap();
        assert_eq!(p["names"], json!(["gpt-3.5-turbo"]));
        assert_eq!(p["action"], json!("flag"));
        assert_eq!(p["limit_value"], Value::Null);
        assert_eq!(p.len(), POLICIES.fields.len());
        let p = v(
            json!({"name": "cap", "kind": "max_cost_per_run", "limit_value": 0.5,
                         "action": "pause", "scope_kind": "agent", "scope_value": "a1"}),
        )
        .unwrap();
        assert_eq!(p["names"], json!([]));
        assert!(validate(&p).is_ok(), "a stored row validates again");
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
}
