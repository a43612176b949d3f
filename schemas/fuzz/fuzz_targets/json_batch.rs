//! The JSON ingest API's decoding, exactly as the gateway runs it: a UTF-8
//! check, then `batch::decode` with the default limits. Asserts what must
//! hold for every body: no panic, every split event either accepted or
//! rejected (rejections in order, in range), and every accepted event
//! survives the Kafka codec unchanged.
#![no_main]

use agentops_schemas::batch;
use agentops_schemas::{Codec, ValidationLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The gateway's default `max_batch_events`.
const MAX_EVENTS: usize = 1000;
/// A fixed clock (2026-09-21), so a finding replays the same way; the seed
/// corpus uses timestamps near it.
const NOW_US: i64 = 1_790_000_000_000_000;
const ORG: &str = "org-fuzz";
/// Parsing the Avro schema costs more than most inputs: once per process.
static CODEC: LazyLock<Codec> = LazyLock::new(Codec::v1);

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
        assert_eq!(
            event.org_id, ORG,
            "the org comes from the key, never the body"
        );
        let bytes = CODEC.encode(event).expect("an accepted event encodes");
        let back = CODEC.decode(&bytes).expect("an encoded event decodes");
        assert_eq!(&back, event, "the codec round-trips every accepted event");
    }
});
