//! Reading the fields of a JSON object (an API request body, or a stored
//! row as `to_jsonb`) one by one, each failure a [`FieldError`] naming its
//! field. The budget, rule and policy validators are built from these, so a
//! row is checked by the same code whether it arrives over the API or is
//! read back by the processors. No I/O.
//!
//! Conventions: `null` means absent; a field a kind does not use is refused
//! ([`unused`]).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::scope::{Scope, ScopeKind};
use crate::vocabulary::Vocabulary;

/// A JSON object: a body, or a row's columns.
pub type Obj = Map<String, Value>;

/// Longest accepted name (channels, budgets, rules, policies).
pub const MAX_NAME: usize = 100;

/// A field that fails validation, and why (the API answers 400
/// `invalid_field` with both).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// A [`FieldError`].
pub fn bad(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The field's value unless absent or null.
pub fn present<'a>(m: &'a Obj, field: &str) -> Option<&'a Value> {
    m.get(field).filter(|v| !v.is_null())
}

pub fn opt_str<'a>(m: &'a Obj, field: &'static str) -> Result<Option<&'a str>, FieldError> {
    match present(m, field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(field, "expected a string")),
    }
}

/// A required, non-empty, printable name of at most [`MAX_NAME`] characters.
pub fn name(m: &Obj) -> Result<String, FieldError> {
    let n = opt_str(m, "name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name", "required: a non-empty string"))?;
    if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(bad(
            "name",
            format!("at most {MAX_NAME} characters, no control characters"),
        ));
    }
    Ok(n.to_owned())
}

/// One of a [`Vocabulary`]'s names; `default` when absent (required when
/// there is none).
pub fn one_of<T: Vocabulary>(
    m: &Obj,
    field: &'static str,
    default: Option<T>,
) -> Result<T, FieldError> {
    let expected = || format!("expected one of {}", T::names());
    match opt_str(m, field) {
        Ok(None) => default.ok_or_else(|| bad(field, format!("required; {}", expected()))),
        Ok(Some(v)) => T::parse(v).map_err(|_| bad(field, expected())),
        Err(_) => Err(bad(field, expected())),
    }
}

/// A finite number.
pub fn opt_f64(m: &Obj, field: &'static str) -> Result<Option<f64>, FieldError> {
    match present(m, field) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| bad(field, "expected a number")),
    }
}

/// A number `x` with `0 < x <= max`.
pub fn opt_positive(m: &Obj, field: &'static str, max: f64) -> Result<Option<f64>, FieldError> {
    match opt_f64(m, field)? {
        Some(x) if x <= 0.0 || x > max => Err(bad(
            field,
            format!("expected a number above 0, at most {max}"),
        )),
        other => Ok(other),
    }
}

/// A whole number in `min..=max` (`60` and `60.0` both count).
pub fn opt_int(
    m: &Obj,
    field: &'static str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, FieldError> {
    let Some(v) = present(m, field) else {
        return Ok(None);
    };
    v.as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 1e15)
                .map(|x| x as i64)
        })
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            bad(
                field,
                format!("expected a whole number from {min} to {max}"),
            )
        })
}

pub fn opt_bool(m: &Obj, field: &'static str) -> Result<Option<bool>, FieldError> {
    match present(m, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(field, "expected true or false")),
    }
}

/// An array of non-empty strings (each at most `max_len` characters),
/// deduplicated in order; absent = empty.
pub fn str_list(m: &Obj, field: &'static str, max_len: usize) -> Result<Vec<String>, FieldError> {
    let Some(v) = present(m, field) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .filter(|a| a.len() <= 1000)
        .ok_or_else(|| bad(field, "expected an array of at most 1000 strings"))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let s = item
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.chars().count() <= max_len)
            .filter(|s| !s.chars().any(char::is_control))
            .ok_or_else(|| {
                bad(
                    field,
                    format!(
                        "every entry must be a non-empty string of at most {max_len} characters"
                    ),
                )
            })?;
        if seen.insert(s.to_owned()) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// `channels`: an array of channel ids (UUIDs), deduplicated; absent = empty.
pub fn channel_ids(m: &Obj) -> Result<Vec<uuid::Uuid>, FieldError> {
    let mut out: Vec<uuid::Uuid> = Vec::new();
    for s in str_list(m, "channels", 64)? {
        let id = s.parse().map_err(|_| {
            bad(
                "channels",
                format!("`{s}` is not a channel id (a UUID from /v1/admin/channels)"),
            )
        })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// `scope_kind` (default `org`) and `scope_value`, the kind one of `allowed`.
pub fn scope(m: &Obj, allowed: &[ScopeKind]) -> Result<Scope, FieldError> {
    let kind = match opt_str(m, "scope_kind")? {
        None => ScopeKind::Org,
        Some(k) => k
            .parse::<ScopeKind>()
            .map_err(|e| bad("scope_kind", e.to_string()))?,
    };
    if !allowed.contains(&kind) {
        let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
        return Err(bad(
            "scope_kind",
            format!(
                "`{kind}` is not allowed here; expected one of {}",
                names.join(", ")
            ),
        ));
    }
    Scope::new(kind, opt_str(m, "scope_value")?).map_err(|e| bad(e.field(), e.to_string()))
}

/// Refuse a field the kind does not use, unless absent, null or `default`.
pub fn unused(
    m: &Obj,
    field: &'static str,
    kind: &str,
    default: Option<&Value>,
) -> Result<(), FieldError> {
    match present(m, field) {
        Some(v) if Some(v) != default => Err(bad(field, format!("not used by kind `{kind}`"))),
        _ => Ok(()),
    }
}

/// The scope columns of a normalized object.
pub fn put_scope(out: &mut Obj, scope: &Scope) {
    out.insert("scope_kind".into(), scope.kind().as_str().into());
    out.insert("scope_value".into(), scope.value().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, FieldError>) -> &'static str {
        r.unwrap_err().field
    }

    #[test]
    fn scalar_fields() {
        use crate::scope::Period;
        let m = obj(json!({"name": "  x ", "n": 60.0, "f": "1", "b": 1, "z": null, "k": "week"}));
        assert_eq!(name(&m).unwrap(), "x");
        assert_eq!(field_of(name(&obj(json!({"name": " "})))), "name");
        assert_eq!(field_of(name(&obj(json!({})))), "name");
        assert!(name(&obj(json!({"name": "x".repeat(101)}))).is_err());
        assert_eq!(opt_int(&m, "n", 1, 100).unwrap(), Some(60));
        assert!(opt_int(&m, "n", 1, 10).is_err());
        assert!(opt_int(&obj(json!({"n": 1.5})), "n", 0, 10).is_err());
        assert_eq!(field_of(opt_f64(&m, "f")), "f");
        assert_eq!(opt_f64(&m, "z").unwrap(), None);
        assert!(opt_bool(&m, "b").is_err());
        assert!(opt_positive(&obj(json!({"p": 0})), "p", 10.0).is_err());
        assert!(opt_positive(&obj(json!({"p": 11})), "p", 10.0).is_err());
        assert_eq!(
            opt_positive(&obj(json!({"p": 10})), "p", 10.0).unwrap(),
            Some(10.0)
        );
        assert_eq!(one_of(&m, "k", None::<Period>).unwrap(), Period::Week);
        assert_eq!(one_of(&m, "x", Some(Period::Day)).unwrap(), Period::Day);
        let e = one_of::<Period>(&m, "x", None).unwrap_err();
        assert_eq!(e.message, "required; expected one of day, week, month");
        let e = one_of::<Period>(&obj(json!({"k": "year"})), "k", None).unwrap_err();
        assert_eq!(e.message, "expected one of day, week, month");
        assert!(one_of::<Period>(&obj(json!({"k": 1})), "k", None).is_err());
    }

    #[test]
    fn lists_and_channels() {
        let m = obj(json!({"l": ["a", " b", "a"], "bad": ["a", ""], "s": "a"}));
        assert_eq!(str_list(&m, "l", 10).unwrap(), vec!["a", "b"]);
        assert!(str_list(&m, "bad", 10).is_err());
        assert!(str_list(&m, "s", 10).is_err());
        assert!(str_list(&m, "missing", 10).unwrap().is_empty());
        let id = uuid::Uuid::new_v4();
        let c = obj(json!({"channels": [id.to_string(), id.to_string()]}));
        assert_eq!(channel_ids(&c).unwrap(), vec![id]);
        assert_eq!(
            field_of(channel_ids(&obj(json!({"channels": ["nope"]})))),
            "channels"
        );
    }

    #[test]
    fn scopes() {
        let all = ScopeKind::ALL;
        assert_eq!(scope(&obj(json!({})), all).unwrap(), Scope::org());
        let s = scope(
            &obj(json!({"scope_kind": "tag", "scope_value": "team=pay"})),
            all,
        );
        assert_eq!(s.unwrap().scope_key(), "tag=team=pay");
        let e = scope(
            &obj(json!({"scope_kind": "tag", "scope_value": "team"})),
            all,
        );
        assert_eq!(field_of(e), "scope_value");
        let e = scope(&obj(json!({"scope_kind": "org", "scope_value": "x"})), all);
        assert_eq!(field_of(e), "scope_value");
        let e = scope(&obj(json!({"scope_kind": "agent"})), all);
        assert_eq!(field_of(e), "scope_value");
        let e = scope(&obj(json!({"scope_kind": "team"})), all);
        assert_eq!(field_of(e), "scope_kind");
        let e = scope(
            &obj(json!({"scope_kind": "tag", "scope_value": "a=b"})),
            &[ScopeKind::Org],
        );
        assert_eq!(field_of(e), "scope_kind");
    }

    #[test]
    fn unused_fields() {
        let m = obj(json!({"min_runs": 1, "minutes": 5, "window_secs": null}));
        assert!(unused(&m, "min_runs", "k", Some(&json!(1))).is_ok());
        assert!(unused(&m, "window_secs", "k", None).is_ok());
        assert_eq!(field_of(unused(&m, "minutes", "k", None)), "minutes");
    }
}
