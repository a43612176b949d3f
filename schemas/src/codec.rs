//! Kafka record codec: Avro single-object encoding.
//!
//! Every record value is `C3 01` + the 8-byte CRC-64-AVRO (Rabin) fingerprint
//! of the writer schema + the Avro binary datum. The same fingerprint is also
//! sent as the `agentops-schema-fp` header (hex) so tools can route records
//! without reading the value.
//!
//! Why single-object encoding and not Confluent framing: Confluent's 5-byte
//! header carries a schema-registry id, so every producer and consumer would
//! need a registry service to resolve it. The fingerprint identifies the
//! writer schema by content, needs no service, and is an Avro standard; a
//! reader keeps every schema version it knows (compiled in from `avro/`)
//! and resolves older or newer writers against its own reader schema.

use std::collections::HashMap;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::Schema;

use crate::event::AgentEvent;

/// The v1 schema, the source of truth.
pub const AGENT_EVENT_V1: &str = include_str!("../avro/agent_event.v1.avsc");
/// Header naming the writer schema's fingerprint (hex).
pub const SCHEMA_HEADER: &str = "agentops-schema-fp";
const MAGIC: [u8; 2] = [0xC3, 0x01];

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record is not Avro single-object encoded (bad magic or too short)")]
    BadFraming,
    #[error("unknown writer schema fingerprint {0}")]
    UnknownSchema(String),
    #[error("avro: {0}")]
    Avro(String),
}

impl From<apache_avro::Error> for CodecError {
    fn from(e: apache_avro::Error) -> Self {
        CodecError::Avro(e.to_string())
    }
}

/// Encodes with one writer schema; decodes any known writer schema into the reader schema.
#[derive(Clone)]
pub struct Codec {
    schema: Schema,
    fingerprint: [u8; 8],
    writers: HashMap<[u8; 8], Schema>,
    /// The reader/writer schema is exactly v1: use the hand-written binary codec.
    is_v1: bool,
}

fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    let mut out = [0u8; 8];
    out.copy_from_slice(&fp.bytes[..8]);
    out
}

impl Codec {
    /// The codec for the current contract (v1).
    #[allow(
        clippy::expect_used,
        reason = "the bundled schema is a compile-time constant, parsed by every test"
    )]
    pub fn v1() -> Self {
        Self::new(AGENT_EVENT_V1).expect("the bundled v1 schema parses")
    }

    /// A codec whose reader and writer schema is `schema_json`.
    pub fn new(schema_json: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(schema_json)?;
        let fp = fingerprint(&schema);
        let mut writers = HashMap::new();
        writers.insert(fp, schema.clone());
        let is_v1 = fp == fingerprint(&Schema::parse_str(AGENT_EVENT_V1)?);
        Ok(Self {
            schema,
            fingerprint: fp,
            writers,
            is_v1,
        })
    }

    /// Teach the reader another writer schema version.
    pub fn with_writer(mut self, schema_json: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(schema_json)?;
        self.writers.insert(fingerprint(&schema), schema);
        Ok(self)
    }

    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn encode(&self, event: &AgentEvent) -> Result<Vec<u8>, CodecError> {
        if self.is_v1 {
            let mut out = Vec::with_capacity(256);
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&self.fingerprint);
            crate::binary::encode_v1(event, &mut out);
            return Ok(out);
        }
        self.encode_value(apache_avro::to_value(event)?)
    }

    /// Encode a generic Avro value (resolved against the writer schema first).
    pub fn encode_value(&self, value: Value) -> Result<Vec<u8>, CodecError> {
        let value = value.resolve(&self.schema)?;
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&apache_avro::to_avro_datum(&self.schema, value)?);
        Ok(out)
    }

    /// Decode into the reader schema as a generic value.
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        if bytes.len() < 10 || bytes[..2] != MAGIC {
            return Err(CodecError::BadFraming);
        }
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&bytes[2..10]);
        let writer = self.writers.get(&fp).ok_or_else(|| {
            CodecError::UnknownSchema(fp.iter().map(|b| format!("{b:02x}")).collect())
        })?;
        let mut datum = &bytes[10..];
        let reader = if fp == self.fingerprint {
            None
        } else {
            Some(&self.schema)
        };
        Ok(apache_avro::from_avro_datum(writer, &mut datum, reader)?)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<AgentEvent, CodecError> {
        if self.is_v1
            && bytes.len() >= 10
            && bytes[..2] == MAGIC
            && bytes[2..10] == self.fingerprint
        {
            return crate::binary::decode_v1(&bytes[10..])
                .map_err(|e| CodecError::Avro(e.to_string()));
        }
        Ok(apache_avro::from_value(&self.decode_value(bytes)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> AgentEvent {
        AgentEvent {
            event_id: "6f1c1f0e-8a47-4a0b-9f57-3f6f0c7c2b11".into(),
            org_id: "org".into(),
            timestamp: 1_790_000_000_123_456,
            agent_id: "a".into(),
            event_type: "llm_call".into(),
            model: Some("gpt-4o".into()),
            input_tokens: Some(10),
            cost_usd: Some(0.5),
            attributes: [("team".to_string(), "x".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn roundtrip() {
        let c = Codec::v1();
        let bytes = c.encode(&sample()).unwrap();
        assert_eq!(&bytes[..2], &MAGIC);
        assert_eq!(c.decode(&bytes).unwrap(), sample());
    }

    /// The generic apache-avro encoding of an event, framed like `encode`.
    fn generic_encode(c: &Codec, e: &AgentEvent) -> Vec<u8> {
        c.encode_value(apache_avro::to_value(e).unwrap()).unwrap()
    }

    fn generic_decode(c: &Codec, bytes: &[u8]) -> AgentEvent {
        apache_avro::from_value(&c.decode_value(bytes).unwrap()).unwrap()
    }

    fn arb_event() -> impl Strategy<Value = AgentEvent> {
        let s = || proptest::option::of(".{0,20}");
        let n = || proptest::option::of(any::<i64>());
        (
            (
                ".{0,36}",
                ".{0,10}",
                any::<i64>(),
                ".{0,20}",
                s(),
                s(),
                "[a-z_]{1,12}",
                s(),
                n(),
            ),
            (
                s(),
                s(),
                n(),
                n(),
                n(),
                n(),
                n(),
                proptest::option::of(-1e12f64..1e12),
            ),
            (
                s(),
                s(),
                s(),
                s(),
                s(),
                s(),
                proptest::collection::hash_map(".{0,8}", ".{0,8}", 0..4),
                n(),
            ),
        )
            .prop_map(|(a, b, c)| AgentEvent {
                event_id: a.0,
                org_id: a.1,
                timestamp: a.2,
                agent_id: a.3,
                workflow_id: a.4,
                run_id: a.5,
                event_type: a.6,
                status: a.7,
                latency_ms: a.8,
                provider: b.0,
                model: b.1,
                input_tokens: b.2,
                output_tokens: b.3,
                cache_read_tokens: b.4,
                cache_write_tokens: b.5,
                reasoning_tokens: b.6,
                cost_usd: b.7,
                cost_source: c.0,
                tool_name: c.1,
                error_type: c.2,
                error_message: c.3,
                trace_id: c.4,
                span_id: c.5,
                attributes: c.6,
                ingested_at: c.7,
            })
    }

    proptest::proptest! {
        #[test]
        fn hand_written_codec_matches_apache_avro(e in arb_event()) {
            let c = Codec::v1();
            let fast = c.encode(&e).unwrap();
            // apache-avro reads what we write, we read what it writes, both round-trip.
            proptest::prop_assert_eq!(&generic_decode(&c, &fast), &e);
            proptest::prop_assert_eq!(&c.decode(&generic_encode(&c, &e)).unwrap(), &e);
            proptest::prop_assert_eq!(&c.decode(&fast).unwrap(), &e);
            if e.attributes.len() <= 1 {
                proptest::prop_assert_eq!(fast, generic_encode(&c, &e));
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let c = Codec::v1();
            let mut bytes = c.encode(&sample()).unwrap()[..10].to_vec();
            bytes.extend(tail);
            let _ = c.decode(&bytes);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let c = Codec::v1();
        assert!(matches!(c.decode(b"hello"), Err(CodecError::BadFraming)));
        let mut bytes = c.encode(&sample()).unwrap();
        bytes[3] ^= 0xff;
        assert!(matches!(
            c.decode(&bytes),
            Err(CodecError::UnknownSchema(_))
        ));
        let bytes = c.encode(&sample()).unwrap();
        assert!(c.decode(&bytes[..bytes.len() / 2]).is_err());
    }
}
