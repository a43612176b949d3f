//! Bodies of the org and key endpoints, checked field by field (each
//! failure names its field, like the governance API). No I/O.

use agentops_runtime::keys::{valid_org_id, Scope, MAX_ORG_ID};
use serde_json::Value;

use crate::error::ApiError;
use crate::governance::fields::{bad, opt_f64, opt_str, present, Obj, MAX_NAME};

/// Largest accepted ingest rate and burst (events per second / events).
pub const MAX_LIMIT: f64 = 1e9;

/// `POST /v1/admin/keys` fields.
pub(crate) const KEY_FIELDS: &[&str] = &["scopes", "name"];
/// `POST /v1/admin/orgs` fields.
pub(crate) const ORG_FIELDS: &[&str] = &["id", "name", "ingest_events_per_sec", "ingest_burst"];
/// `PATCH /v1/admin/orgs/{id}` fields.
pub(crate) const LIMIT_FIELDS: &[&str] = &["ingest_events_per_sec", "ingest_burst"];

/// A key to create.
#[derive(Debug, PartialEq)]
pub(crate) struct KeyBody {
    pub(crate) scopes: Vec<Scope>,
    pub(crate) name: Option<String>,
}

/// An org to create.
#[derive(Debug, PartialEq)]
pub(crate) struct OrgBody {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) events_per_sec: Option<f64>,
    pub(crate) burst: Option<f64>,
}

/// An optional name: trimmed, 1 to 100 characters, no control characters.
fn opt_name(m: &Obj) -> Result<Option<String>, ApiError> {
    let Some(n) = opt_str(m, "name")?.map(str::trim) else {
        return Ok(None);
    };
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(bad(
            "name",
            format!("expected 1 to {MAX_NAME} characters, no control characters"),
        ));
    }
    Ok(Some(n.to_owned()))
}

/// `scopes`: a non-empty array of `ingest`, `read`, `admin`, deduplicated.
fn scopes(m: &Obj) -> Result<Vec<Scope>, ApiError> {
    let expected = || {
        bad(
            "scopes",
            "required: a non-empty array of ingest, read, admin",
        )
    };
    let items = present(m, "scopes")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(expected)?;
    let mut out = Vec::new();
    for item in items {
        let s = item.as_str().ok_or_else(expected)?;
        let scope = Scope::parse(s).ok_or_else(|| {
            bad(
                "scopes",
                format!("`{s}` is not a scope; expected ingest, read or admin"),
            )
        })?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

pub(crate) fn key_body(m: &Obj) -> Result<KeyBody, ApiError> {
    Ok(KeyBody {
        scopes: scopes(m)?,
        name: opt_name(m)?,
    })
}

/// Ingest limits: a rate above 0, a burst of at least 1 that needs a rate
/// (without one, the burst is the rate), both at most [`MAX_LIMIT`]. The
/// error is the field at fault and why (shared with the CLI).
pub fn check_limits(
    events_per_sec: Option<f64>,
    burst: Option<f64>,
) -> Result<(), (&'static str, String)> {
    if let Some(r) = events_per_sec {
        if !(r.is_finite() && r > 0.0 && r <= MAX_LIMIT) {
            return Err((
                "ingest_events_per_sec",
                format!("expected a number above 0, at most {MAX_LIMIT}"),
            ));
        }
    }
    match (events_per_sec, burst) {
        (_, Some(b)) if !(b.is_finite() && (1.0..=MAX_LIMIT).contains(&b)) => Err((
            "ingest_burst",
            format!("expected a number from 1 to {MAX_LIMIT}"),
        )),
        (None, Some(_)) => Err((
            "ingest_burst",
            "a burst needs ingest_events_per_sec".to_owned(),
        )),
        _ => Ok(()),
    }
}

fn limits(eps: Option<f64>, burst: Option<f64>) -> Result<(Option<f64>, Option<f64>), ApiError> {
    check_limits(eps, burst).map_err(|(field, message)| bad(field, message))?;
    Ok((eps, burst))
}

pub(crate) fn org_body(m: &Obj) -> Result<OrgBody, ApiError> {
    let id = opt_str(m, "id")?
        .filter(|id| valid_org_id(id))
        .ok_or_else(|| {
            bad(
                "id",
                format!(
                    "required: 1 to {MAX_ORG_ID} characters of a-z, 0-9, `.`, `_`, `-`, \
                     starting with a letter or digit"
                ),
            )
        })?
        .to_owned();
    let name = opt_name(m)?.unwrap_or_else(|| id.clone());
    let (events_per_sec, burst) = limits(
        opt_f64(m, "ingest_events_per_sec")?,
        opt_f64(m, "ingest_burst")?,
    )?;
    Ok(OrgBody {
        id,
        name,
        events_per_sec,
        burst,
    })
}

/// The limits after a `PATCH` over `current`: an absent field keeps its
/// value, `null` clears it; clearing the rate clears the burst too unless
/// the patch sets one (which is then refused: a burst needs a rate).
pub(crate) fn patch_limits(
    current: (Option<f64>, Option<f64>),
    patch: &Obj,
) -> Result<(Option<f64>, Option<f64>), ApiError> {
    if patch.is_empty() {
        return Err(bad(
            "ingest_events_per_sec",
            "nothing to change: set ingest_events_per_sec and/or ingest_burst (null clears)",
        ));
    }
    let eps = match patch.get("ingest_events_per_sec") {
        None => current.0,
        Some(_) => opt_f64(patch, "ingest_events_per_sec")?,
    };
    let burst = match patch.get("ingest_burst") {
        None if eps.is_none() => None,
        None => current.1,
        Some(_) => opt_f64(patch, "ingest_burst")?,
    };
    limits(eps, burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::fields::field_error as field;
    use serde_json::json;

    fn obj(v: Value) -> Obj {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn key_bodies() {
        let k = key_body(&obj(
            json!({"scopes": ["read", "ingest", "read"], "name": " ci "}),
        ))
        .unwrap();
        assert_eq!(k.scopes, vec![Scope::Read, Scope::Ingest]);
        assert_eq!(k.name.as_deref(), Some("ci"));
        assert_eq!(
            key_body(&obj(json!({"scopes": ["admin"]}))).unwrap().name,
            None
        );
        for b in [
            json!({}),
            json!({"scopes": []}),
            json!({"scopes": "ingest"}),
            json!({"scopes": ["write"]}),
            json!({"scopes": ["Ingest"]}),
            json!({"scopes": [1]}),
            json!({"scopes": null}),
        ] {
            assert_eq!(field(key_body(&obj(b.clone()))), "scopes", "{b}");
        }
        for n in [
            json!(""),
            json!("  "),
            json!("x".repeat(101)),
            json!("a\nb"),
            json!(3),
        ] {
            let b = obj(json!({"scopes": ["read"], "name": n}));
            assert_eq!(field(key_body(&b)), "name", "{n}");
        }
    }

    #[test]
    fn org_bodies() {
        let o = org_body(&obj(json!({"id": "acme-2", "ingest_events_per_sec": 50}))).unwrap();
        assert_eq!(
            o,
            OrgBody {
                id: "acme-2".into(),
                name: "acme-2".into(),
                events_per_sec: Some(50.0),
                burst: None,
            }
        );
        let o = org_body(&obj(
            json!({"id": "a", "name": "Acme", "ingest_events_per_sec": 0.5, "ingest_burst": 1}),
        ))
        .unwrap();
        assert_eq!((o.name.as_str(), o.burst), ("Acme", Some(1.0)));
        for id in [
            json!(null),
            json!(""),
            json!("Acme"),
            json!("-a"),
            json!("a b"),
            json!(7),
        ] {
            assert_eq!(field(org_body(&obj(json!({"id": id})))), "id", "{id}");
        }
        let long = "a".repeat(64);
        assert_eq!(field(org_body(&obj(json!({"id": long})))), "id");
        for (eps, burst, f) in [
            (json!(0), json!(null), "ingest_events_per_sec"),
            (json!(-1), json!(null), "ingest_events_per_sec"),
            (json!("5"), json!(null), "ingest_events_per_sec"),
            (json!(2e9), json!(null), "ingest_events_per_sec"),
            (json!(5), json!(0.5), "ingest_burst"),
            (json!(5), json!(0), "ingest_burst"),
            (json!(null), json!(10), "ingest_burst"),
        ] {
            let b = obj(json!({"id": "a", "ingest_events_per_sec": eps, "ingest_burst": burst}));
            assert_eq!(field(org_body(&b)), f, "{eps} {burst}");
        }
    }

    #[test]
    fn limit_checks_are_shared() {
        assert!(check_limits(None, None).is_ok());
        assert!(check_limits(Some(1e-3), Some(1.0)).is_ok());
        assert_eq!(
            check_limits(Some(f64::NAN), None).unwrap_err().0,
            "ingest_events_per_sec"
        );
        assert_eq!(
            check_limits(Some(1.0), Some(f64::INFINITY)).unwrap_err().0,
            "ingest_burst"
        );
        assert_eq!(check_limits(None, Some(5.0)).unwrap_err().0, "ingest_burst");
    }

    #[test]
    fn patches_keep_set_and_clear() {
        let cur = (Some(100.0), Some(200.0));
        let p = |v: Value| patch_limits(cur, &obj(v));
        assert_eq!(
            p(json!({"ingest_burst": 300})).unwrap(),
            (Some(100.0), Some(300.0))
        );
        assert_eq!(
            p(json!({"ingest_events_per_sec": 5})).unwrap(),
            (Some(5.0), Some(200.0))
        );
        assert_eq!(
            p(json!({"ingest_burst": null})).unwrap(),
            (Some(100.0), None)
        );
        assert_eq!(
            p(json!({"ingest_events_per_sec": null})).unwrap(),
            (None, None)
        );
        assert_eq!(
            p(json!({"ingest_events_per_sec": null, "ingest_burst": null})).unwrap(),
            (None, None)
        );
        assert_eq!(
            field(p(json!({"ingest_events_per_sec": null, "ingest_burst": 5}))),
            "ingest_burst"
        );
        assert_eq!(
            field(p(json!({"ingest_events_per_sec": 0}))),
            "ingest_events_per_sec"
        );
        assert_eq!(field(p(json!({"ingest_burst": 0.9}))), "ingest_burst");
        assert_eq!(field(p(json!({}))), "ingest_events_per_sec");
        assert_eq!(
            patch_limits((None, None), &obj(json!({"ingest_burst": 3}))).map_err(|_| ()),
            Err(())
        );
    }
}
