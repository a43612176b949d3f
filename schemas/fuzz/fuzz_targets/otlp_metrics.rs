//! `POST /v1/metrics` decoding, point extraction and folding, as the gateway
//! runs them, on the same bytes as protobuf and as OTLP/JSON, with the
//! increments a delta export gives (cumulative ones as their values, the
//! stream state's first answer). Must hold for every body: no panic, every
//! point folded or counted unchanged, every accepted event an `llm_call` of
//! the key's org with tokens and cost never negative, the answer encodes,
//! and the events survive the Kafka codec.
#![no_main]

use agentops_schemas::otlp::metrics;
use agentops_schemas::otlp::Format;
use agentops_schemas::{Codec, ValidationLimits};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const NOW_US: i64 = 1_790_000_000_000_000;
const ORG: &str = "org-fuzz";
static CODEC: LazyLock<Codec> = LazyLock::new(Codec::current);

fuzz_target!(|data: &[u8]| {
    let limits = ValidationLimits::default();
    for format in [Format::Protobuf, Format::Json] {
        let Ok(request) = metrics::decode_metrics(data, format) else {
            continue;
        };
        let (points, ignored) = metrics::points(&request, &limits);
        let deltas: Vec<Option<f64>> = points.iter().map(|p| Some(p.value)).collect();
        let m = metrics::usage_events(&points, &deltas, ignored, ORG, NOW_US, &limits);
        assert_eq!(m.points, points.len());
        assert!(m.accepted.len() + m.rejected.len() <= points.len());
        let _ = metrics::encode_metrics_response(&m.response(), format);
        for event in &m.accepted {
            assert_eq!(event.org_id, ORG);
            assert_eq!(event.event_type, "llm_call");
            let counts = [
                event.input_tokens,
                event.output_tokens,
                event.cache_read_tokens,
                event.cache_write_tokens,
            ];
            assert!(counts.iter().flatten().all(|n| *n >= 0), "counts >= 0");
            assert!(event.cost_usd.is_none_or(|c| c >= 0.0), "cost >= 0");
            let bytes = CODEC.encode(event).expect("an accepted event encodes");
            let back = CODEC.decode(&bytes).expect("an encoded event decodes");
            assert_eq!(&back, event);
        }
    }
});
