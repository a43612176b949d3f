//! Request bodies of the JSON ingest API: split into events, each validated
//! on its own (partial acceptance). Kept here, beside [`crate::validate`], so
//! the fuzz targets exercise exactly what the gateway runs without pulling in
//! Kafka or Postgres.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::validate::{event_from_str, ValidationLimits};
use crate::AgentEvent;

/// Why a whole body was refused (nothing of it is accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("batch has {got} events; at most {max} per request")]
    TooLarge { got: usize, max: usize },
}

/// One rejected event of a batch: its index in the request, the field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub field: String,
    pub error: String,
}

/// A body's valid events (in request order) and the rejected ones.
#[derive(Debug, Default)]
pub struct Batch {
    pub accepted: Vec<AgentEvent>,
    pub rejected: Vec<Rejected>,
}

/// Split a request body into its events (unparsed): one event object,
/// `{"events":[...]}`, or an array of events; at most `max` of them.
pub fn split(body: &str, max: usize) -> Result<Vec<&RawValue>, BatchError> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        events: Option<&'a RawValue>,
    }
    let bad_json = |e: serde_json::Error| BatchError::Json(e.to_string());
    let whole: &RawValue = serde_json::from_str(body).map_err(bad_json)?;
    let events: Vec<&RawValue> = match whole.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(whole.get()).map_err(bad_json)?,
        Some(b'{') => match serde_json::from_str::<Envelope<'_>>(whole.get())
            .map_err(bad_json)?
            .events
        {
            Some(events) => serde_json::from_str(events.get())
                .map_err(|_| BatchError::Shape("field `events`: expected an array".into()))?,
            None => vec![whole],
        },
        _ => {
            return Err(BatchError::Shape(
                "expected an event object, {\"events\":[...]} or an array of events".into(),
            ))
        }
    };
    if events.is_empty() {
        return Err(BatchError::Shape(
            "field `events`: the batch is empty".into(),
        ));
    }
    if events.len() > max {
        return Err(BatchError::TooLarge {
            got: events.len(),
            max,
        });
    }
    Ok(events)
}

/// Split and validate a UTF-8 body for `org_id` at `now_us`.
pub fn decode(
    body: &str,
    max: usize,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<Batch, BatchError> {
    let values = split(body, max)?;
    let mut batch = Batch {
        accepted: Vec::with_capacity(values.len()),
        rejected: Vec::new(),
    };
    for (index, v) in values.iter().enumerate() {
        match event_from_str(v.get(), org_id, now_us, limits) {
            Ok(e) => batch.accepted.push(e),
            Err(e) => batch.rejected.push(Rejected {
                index,
                field: e.field,
                error: e.error,
            }),
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn batch_shapes() {
        assert_eq!(split(r#"{"events": [{}, {"a": 1}]}"#, 10).unwrap().len(), 2);
        let single = split(r#" {"event_id": "x", "n": [1]} "#, 10).unwrap();
        assert_eq!(single.len(), 1);
        assert!(single[0].get().contains("event_id"));
        assert_eq!(split("[{}, {}, 3]", 10).unwrap().len(), 3);
        let shape = |r| matches!(r, Err(BatchError::Shape(_)));
        assert!(shape(split(r#"{"events": 3}"#, 10)));
        assert!(shape(split(r#"{"events": []}"#, 10)));
        assert!(shape(split(r#""x""#, 10)));
        let json = |r| matches!(r, Err(BatchError::Json(_)));
        assert!(json(split(r#"{"events": [{}"#, 10)));
        assert!(json(split("{} trailing", 10)));
        assert_eq!(
            split("[{}, {}, {}]", 2).unwrap_err(),
            BatchError::TooLarge { got: 3, max: 2 }
        );
    }

    fn event(i: usize, now: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
        json!({
            "event_id": uuid::Uuid::from_u128(i as u128 + 1).to_string(),
            "agent_id": format!("a{i}"),
            "type": "llm_call",
            "timestamp": now.to_rfc3339(),
            "model": "gpt-4o",
            "input_tokens": 10,
        })
    }

    proptest! {
        /// Partial acceptance: however a batch mixes good and broken events,
        /// every event is either accepted (in order) or rejected with its
        /// own index, never both, never lost.
        #[test]
        fn every_event_is_accepted_or_rejected_once(
            broken in proptest::collection::vec(proptest::option::of(prop_oneof![
                Just(("agent_id", json!(""))),
                Just(("event_id", json!("not-a-uuid"))),
                Just(("timestamp", json!("2001-01-01T00:00:00Z"))),
                Just(("timestamp", json!("2999-01-01T00:00:00Z"))),
                Just(("type", json!("nope"))),
                Just(("input_tokens", json!(-1))),
            ]), 1..40)
        ) {
            let now = chrono::Utc::now();
            let events: Vec<serde_json::Value> = broken.iter().enumerate().map(|(i, b)| {
                let mut e = event(i, now);
                if let Some((field, junk)) = b {
                    e[*field] = junk.clone();
                }
                e
            }).collect();
            let body = json!({"events": events}).to_string();
            let batch = decode(&body, 1000, "org", now.timestamp_micros(), &ValidationLimits::default()).unwrap();
            prop_assert_eq!(batch.accepted.len() + batch.rejected.len(), broken.len());
            let rejected: Vec<usize> = batch.rejected.iter().map(|r| r.index).collect();
            let expected: Vec<usize> = broken.iter().enumerate().filter(|(_, b)| b.is_some()).map(|(i, _)| i).collect();
            prop_assert_eq!(rejected, expected);
            for r in &batch.rejected {
                prop_assert_eq!(r.field.as_str(), broken[r.index].as_ref().unwrap().0);
            }
            let accepted: Vec<String> = batch.accepted.iter().map(|e| e.agent_id.clone()).collect();
            let good: Vec<String> = broken.iter().enumerate().filter(|(_, b)| b.is_none()).map(|(i, _)| format!("a{i}")).collect();
            prop_assert_eq!(accepted, good);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bodies_never_panic(body in ".{0,200}") {
            let _ = decode(&body, 10, "org", 0, &ValidationLimits::default());
        }
    }
}
