//! `POST /v1/logs` decoding and mapping, as the gateway runs it (both usage
//! sources), on the same bytes as protobuf and as OTLP/JSON. Must hold for
//! every body: no panic, every record mapped, ignored or rejected (indices in
//! range and in order), the answer encodes, and every accepted event is one
//! the mapping makes, for the key's org, and survives the Kafka codec.
#![no_main]

use agentops_schemas::otlp::logs;
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
        for usage in [true, false] {
            let Ok(m) = logs::decode_and_map_logs(data, format, ORG, NOW_US, &limits, usage) else {
                continue;
            };
            assert!(
                m.accepted.len() + m.ignored + m.rejected_records() <= m.records,
                "at most one outcome per record"
            );
            for pair in m.rejected.windows(2) {
                assert!(pair[0].index <= pair[1].index, "rejections in record order");
            }
            if let Some(last) = m.rejected.last() {
                assert!(last.index < m.records, "rejected index in range");
            }
            let bytes = logs::encode_logs_response(&m.response(), format);
            assert!(!bytes.is_empty() || format == Format::Protobuf);
            for event in &m.accepted {
                assert_eq!(event.org_id, ORG);
                assert!(["llm_call", "tool_call", "run_started"].contains(&event.event_type.as_str()));
                if !usage && event.provider.as_deref() == Some("anthropic") {
                    assert!(event.cost_usd.is_none() && event.input_tokens.is_none());
                }
                assert!(!event.attributes.contains_key("prompt"));
                assert!(event.attributes.len() <= limits.max_attributes);
                let bytes = CODEC.encode(event).expect("an accepted event encodes");
                let back = CODEC.decode(&bytes).expect("an encoded event decodes");
                assert_eq!(&back, event);
            }
        }
    }
});
