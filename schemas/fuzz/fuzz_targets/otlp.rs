//! `POST /v1/traces` decoding and mapping, exactly as the gateway runs it:
//! `otlp::decode_and_map` on the same bytes as protobuf and as OTLP/JSON,
//! with the default limits. Asserts what must hold for every body: no
//! panic, every span mapped, ignored or rejected exactly once (rejections
//! in span order, in range), the answer encodes and decodes in the request's
//! format, and every accepted event is one the mapping makes (its run the
//! trace, within the limits) and survives the Kafka codec unchanged.
#![no_main]

use agentops_schemas::otlp::{self, Format};
use agentops_schemas::{Codec, ValidationLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// A fixed clock (2026-09-21), so a finding replays the same way; the seed
/// corpus uses span times near it.
const NOW_US: i64 = 1_790_000_000_000_000;
const ORG: &str = "org-fuzz";
/// Parsing the Avro schema costs more than most inputs: once per process.
static CODEC: LazyLock<Codec> = LazyLock::new(Codec::current);

fuzz_target!(|data: &[u8]| {
    let limits = ValidationLimits::default();
    for format in [Format::Protobuf, Format::Json] {
        let Ok(mapped) = otlp::decode_and_map(data, format, ORG, NOW_US, &limits) else {
            continue;
        };
        assert_eq!(
            mapped.mapped_spans() + mapped.ignored_spans + mapped.rejected_spans(),
            mapped.spans,
            "every span is mapped, ignored or rejected, exactly once"
        );
        for pair in mapped.rejected.windows(2) {
            assert!(pair[0].index <= pair[1].index, "rejections in span order");
        }
        if let Some(last) = mapped.rejected.last() {
            assert!(last.index < mapped.spans, "rejected index in range");
        }
        let response = mapped.response();
        let bytes = otlp::encode_response(&response, format);
        match format {
            Format::Protobuf => {
                let back: otlp::ExportTraceServiceResponse =
                    prost_decode(&bytes).expect("the answer decodes");
                assert_eq!(back, response, "the protobuf answer round-trips");
            }
            Format::Json => {
                let back: serde_json::Value =
                    serde_json::from_slice(&bytes).expect("the answer is JSON");
                assert!(back.is_object());
            }
        }
        for event in &mapped.accepted {
            assert_eq!(
                event.org_id, ORG,
                "the org comes from the key, never the body"
            );
            assert!(
                [
                    "llm_call",
                    "tool_call",
                    "run_started",
                    "run_completed",
                    "run_failed"
                ]
                .contains(&event.event_type.as_str()),
                "a type the mapping makes: {}",
                event.event_type
            );
            let trace = event.trace_id.as_deref().expect("trace_id kept");
            assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(event.run_id.as_deref(), Some(trace), "the run is the trace");
            assert_eq!(event.span_id.as_deref().map(str::len), Some(16));
            assert!(event.attributes.len() <= limits.max_attributes);
            let counts = [event.input_tokens, event.output_tokens, event.latency_ms];
            assert!(counts.iter().flatten().all(|n| *n >= 0), "counts >= 0");
            let bytes = CODEC.encode(event).expect("an accepted event encodes");
            let back = CODEC.decode(&bytes).expect("an encoded event decodes");
            assert_eq!(&back, event, "the codec round-trips every accepted event");
        }
    }
});

fn prost_decode(bytes: &[u8]) -> Option<otlp::ExportTraceServiceResponse> {
    <otlp::ExportTraceServiceResponse as prost::Message>::decode(bytes).ok()
}
