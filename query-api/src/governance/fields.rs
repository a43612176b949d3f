//! Request bodies of the management endpoints: a JSON object whose fields
//! are checked one by one, each failure naming its field. No I/O.
//!
//! The field readers live in `agentops_governance::fields` (the budgets,
//! rules and policies are validated there); this module adds what is the
//! API's own: the body itself ([`parse_body`]) and errors as [`ApiError`].
//!
//! Conventions: an empty body is `{}`; a field not listed for the endpoint
//! is refused (`unknown_field`, so a typo never passes silently); `null`
//! means absent.

pub(crate) use agentops_governance::fields::{
    channel_ids, name, one_of, opt_f64, opt_int, opt_str, present, Obj, MAX_NAME,
};
use serde_json::Value;

use crate::error::ApiError;

pub(crate) fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadField {
        field,
        message: message.into(),
    }
}

/// The body as a JSON object with only `allowed` fields.
pub(crate) fn parse_body(bytes: &[u8], allowed: &[&str]) -> Result<Obj, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Obj::new());
    }
    let v: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::BadJson(e.to_string()))?;
    let Value::Object(m) = v else {
        return Err(ApiError::BadJson(
            "expected an object like {\"name\": ...}".into(),
        ));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::UnknownField(k.clone()));
    }
    Ok(m)
}

/// In tests: the field a validation error names (panics on anything else).
#[cfg(test)]
pub(crate) fn field_error<T: std::fmt::Debug>(r: Result<T, ApiError>) -> &'static str {
    match r {
        Err(ApiError::BadField { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::BadField { field, .. } => field.to_owned(),
            ApiError::UnknownField(f) => f,
            other => panic!("not a field error: {other}"),
        }
    }

    #[test]
    fn bodies_are_objects_with_known_fields() {
        assert!(parse_body(b"", &["a"]).unwrap().is_empty());
        assert!(parse_body(b"  \n", &["a"]).unwrap().is_empty());
        assert_eq!(parse_body(br#"{"a":1}"#, &["a"]).unwrap()["a"], json!(1));
        assert!(matches!(
            parse_body(b"[1]", &["a"]),
            Err(ApiError::BadJson(_))
        ));
        assert!(matches!(
            parse_body(b"{", &["a"]),
            Err(ApiError::BadJson(_))
        ));
        assert_eq!(
            field_of(parse_body(br#"{"a":1,"b":2}"#, &["a"]).unwrap_err()),
            "b"
        );
    }
}
