//! The JSON ingest API's decoding, exactly as the gateway runs it: a UTF-8
//! check, then `batch::decode` with the default limits. Asserts what must
//! hold for every body: no panic, every split event either accepted or
//! rejected (rejections in order, in range), and every accepted event
//! respects the validation limits and survives the Kafka codec unchanged.
#![no_main]

use agentops_schemas::batch;
use agentops_schemas::{AgentEvent, Codec, EventType, ValidationLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The gateway's default `max_batch_events`.
const MAX_EVENTS: usize = 1000;
/// A fixed clock (2026-09-21), so a finding replays the same way; the seed
/// corpus uses timestamps near it.
const NOW_US: i64 = 1_790_000_000_000_000;
const ORG: &str = "org-fuzz";
/// Parsing the Avro schema costs more than most inputs: once per process.
static CODEC: LazyLock<Codec> = LazyLock::new(Codec::current);

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let limits = ValidationLimits::default();
    let result = batch::decode(body, MAX_EVENTS, ORG, NOW_US, &limits);
    let split = batch::split(body, MAX_EVENTS);
    let batch = match (result, split) {
        (Ok(batch), Ok(events)) => {
            assert_eq!(
                batch.accepted.len() + batch.rejected.len(),
                events.len(),
                "every event is accepted or rejected, exactly once"
            );
            batch
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "decode refuses a body for the reason split does");
            return;
        }
        (a, b) => panic!(
            "decode and split disagree: decode ok = {}, split ok = {}",
            a.is_ok(),
            b.is_ok()
        ),
    };
    let total = batch.accepted.len() + batch.rejected.len();
    for pair in batch.rejected.windows(2) {
        assert!(pair[0].index < pair[1].index, "rejected indexes increase");
    }
    if let Some(last) = batch.rejected.last() {
        assert!(last.index < total, "rejected index in range");
    }
    for event in &batch.accepted {
        assert_within_limits(event, &limits);
        let bytes = CODEC.encode(event).expect("an accepted event encodes");
        let back = CODEC.decode(&bytes).expect("an encoded event decodes");
        assert_eq!(&back, event, "the codec round-trips every accepted event");
    }
});

/// What validation promises about every event it accepts.
fn assert_within_limits(e: &AgentEvent, limits: &ValidationLimits) {
    assert_eq!(e.org_id, ORG, "the org comes from the key, never the body");
    assert_eq!(e.ingested_at, Some(NOW_US));
    assert!(EventType::parse(&e.event_type).is_some(), "known type");
    let id = uuid::Uuid::parse_str(&e.event_id).expect("event_id is a UUID");
    assert_eq!(e.event_id, id.hyphenated().to_string(), "canonical UUID");
    assert!(e.timestamp <= NOW_US + limits.max_future_secs * 1_000_000);
    assert!(e.timestamp >= NOW_US - limits.max_age_secs * 1_000_000);
    let counts = [
        e.latency_ms,
        e.input_tokens,
        e.output_tokens,
        e.cache_read_tokens,
        e.cache_write_tokens,
        e.reasoning_tokens,
    ];
    assert!(counts.iter().flatten().all(|n| *n >= 0), "counts >= 0");
    if let Some(c) = e.cost_usd {
        assert!(c.is_finite() && c >= 0.0, "cost_usd {c}");
    }
    let short = [&e.agent_id, &e.event_id, &e.event_type].into_iter().chain(
        [
            &e.workflow_id,
            &e.run_id,
            &e.status,
            &e.provider,
            &e.model,
            &e.tool_name,
            &e.error_type,
            &e.trace_id,
            &e.span_id,
        ]
        .into_iter()
        .flatten(),
    );
    for s in short {
        assert!(!s.is_empty() && s.len() <= limits.max_string_len, "{s:?}");
        assert!(!s.contains('\0'), "PostgreSQL cannot store U+0000");
    }
    if let Some(m) = &e.error_message {
        assert!(
            m.len() <= limits.max_message_len,
            "error_message of {} bytes",
            m.len()
        );
        assert!(!m.contains('\0'), "PostgreSQL cannot store U+0000");
    }
    assert!(e.attributes.len() <= limits.max_attributes);
    for (k, v) in &e.attributes {
        assert!(
            k.len() <= limits.max_string_len,
            "attribute key of {} bytes",
            k.len()
        );
        assert!(
            v.len() <= limits.max_message_len,
            "attribute value of {} bytes",
            v.len()
        );
        assert!(
            !k.contains('\0') && !v.contains('\0'),
            "PostgreSQL cannot store U+0000"
        );
    }
}
