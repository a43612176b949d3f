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

/// The v1 schema.
pub const AGENT_EVENT_V1: &str = include_str!("../avro/agent_event.v1.avsc");
/// The v2 schema (v1 + project, machine, workspace, session), the source of
/// truth of the current contract.
pub const AGENT_EVENT_V2: &str = include_str!("../avro/agent_event.v2.avsc");
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

/// Fingerprints of the bundled versions, for the hand-written paths.
#[derive(Clone, Copy)]
struct Bundled {
    v1: [u8; 8],
    v2: [u8; 8],
}

/// Encodes with one writer schema; decodes any known writer schema into the reader schema.
#[derive(Clone)]
pub struct Codec {
    schema: Schema,
    fingerprint: [u8; 8],
    writers: HashMap<[u8; 8], Schema>,
    /// The reader schema is the current contract (v2): events are written
    /// and read by the hand-written binary codec, as v1 when they carry no
    /// hierarchy field (byte for byte what a v1 writer wrote, so a reader
    /// that only knows v1 keeps reading them) and as v2 otherwise.
    bundled: Option<Bundled>,
}

fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    let mut out = [0u8; 8];
    out.copy_from_slice(&fp.bytes[..8]);
    out
}

fn hex(fp: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(fp.len() * 2);
    for b in fp {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The bundled versions' fingerprints in hex, computed once.
fn bundled_hex() -> &'static [([u8; 8], String); 2] {
    static HEX: std::sync::OnceLock<[([u8; 8], String); 2]> = std::sync::OnceLock::new();
    HEX.get_or_init(|| {
        [AGENT_EVENT_V1, AGENT_EVENT_V2].map(|json| {
            let fp = Schema::parse_str(json).map_or([0; 8], |s| fingerprint(&s));
            (fp, hex(&fp))
        })
    })
}

/// The [`SCHEMA_HEADER`] value of an encoded record: its writer schema's
/// fingerprint in hex (empty for a record too short to carry one). Called
/// per produced record: the bundled versions' are borrowed, not rebuilt.
pub fn header_value(record: &[u8]) -> std::borrow::Cow<'static, str> {
    let Some(fp) = record.get(2..10) else {
        return std::borrow::Cow::Borrowed("");
    };
    match bundled_hex().iter().find(|(known, _)| known[..] == *fp) {
        Some((_, h)) => std::borrow::Cow::Borrowed(h.as_str()),
        None => std::borrow::Cow::Owned(hex(fp)),
    }
}

impl Codec {
    /// The codec of the current contract: reads v1 and v2 records, writes
    /// v1 or v2 (see [`Codec::encode`]).
    #[allow(
        clippy::expect_used,
        reason = "the bundled schemas are compile-time constants, parsed by every test"
    )]
    pub fn current() -> Self {
        let mut c = Self::new(AGENT_EVENT_V2)
            .and_then(|c| c.with_writer(AGENT_EVENT_V1))
            .expect("the bundled schemas parse");
        let v1 = fingerprint(&Schema::parse_str(AGENT_EVENT_V1).expect("v1 parses"));
        c.bundled = Some(Bundled {
            v1,
            v2: c.fingerprint,
        });
        c
    }

    /// A reader and writer of v1 only (what a component built before v2
    /// is), through the generic apache-avro path; for evolution tests.
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
        Ok(Self {
            schema,
            fingerprint: fp,
            writers,
            bundled: None,
        })
    }

    /// Teach the reader another writer schema version.
    pub fn with_writer(mut self, schema_json: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(schema_json)?;
        self.writers.insert(fingerprint(&schema), schema);
        Ok(self)
    }

    /// The reader schema's fingerprint (hex).
    pub fn fingerprint_hex(&self) -> String {
        hex(&self.fingerprint)
    }

    /// Encode `event`. The current codec writes v1 when the event has no
    /// hierarchy field and v2 otherwise; others write their own schema.
    pub fn encode(&self, event: &AgentEvent) -> Result<Vec<u8>, CodecError> {
        if let Some(b) = self.bundled {
            let mut out = Vec::with_capacity(256);
            out.extend_from_slice(&MAGIC);
            if event.has_hierarchy() {
                out.extend_from_slice(&b.v2);
                crate::binary::encode_v2(event, &mut out);
            } else {
                out.extend_from_slice(&b.v1);
                crate::binary::encode_v1(event, &mut out);
            }
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
        let writer = self
            .writers
            .get(&fp)
            .ok_or_else(|| CodecError::UnknownSchema(hex(&fp)))?;
        let mut datum = &bytes[10..];
        let reader = if fp == self.fingerprint {
            None
        } else {
            Some(&self.schema)
        };
        Ok(apache_avro::from_avro_datum(writer, &mut datum, reader)?)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<AgentEvent, CodecError> {
        if let Some(b) = self.bundled {
            if bytes.len() >= 10 && bytes[..2] == MAGIC {
                let (fp, datum) = (&bytes[2..10], &bytes[10..]);
                let fast = if fp == b.v1 {
                    Some(crate::binary::decode_v1(datum))
                } else if fp == b.v2 {
                    Some(crate::binary::decode_v2(datum))
                } else {
                    None
                };
                if let Some(r) = fast {
                    return r.map_err(|e| CodecError::Avro(e.to_string()));
                }
            }
        }
        let value = self.decode_value(bytes)?;
        // A v1 reader's value lacks the v2 fields: serde fills them with None.
        Ok(apache_avro::from_value(&value)?)
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

    fn with_hierarchy(mut e: AgentEvent) -> AgentEvent {
        e.project_id = Some("github.com/acme/shop".into());
        e.machine_id = Some("m-1".into());
        e.session_id = Some("s-1".into());
        e
    }

    #[test]
    fn roundtrip() {
        let c = Codec::current();
        for e in [sample(), with_hierarchy(sample())] {
            let bytes = c.encode(&e).unwrap();
            assert_eq!(&bytes[..2], &MAGIC);
            assert_eq!(c.decode(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn events_without_hierarchy_are_written_as_v1_and_others_as_v2() {
        let c = Codec::current();
        let v1 = Codec::v1();
        let v2 = Codec::new(AGENT_EVENT_V2).unwrap();
        let plain = c.encode(&sample()).unwrap();
        // Byte for byte what a v1 writer writes; a v1-only reader reads it.
        assert_eq!(plain, v1.encode(&sample()).unwrap());
        assert_eq!(header_value(&plain), v1.fingerprint_hex());
        assert_eq!(v1.decode(&plain).unwrap(), sample());
        let rich = c.encode(&with_hierarchy(sample())).unwrap();
        assert_eq!(header_value(&rich), v2.fingerprint_hex());
        assert_eq!(header_value(&rich), c.fingerprint_hex());
        assert_eq!(rich, generic_encode(&v2, &with_hierarchy(sample())));
        // A v1 reader that was taught v2 resolves it, dropping the new fields.
        let old = Codec::v1().with_writer(AGENT_EVENT_V2).unwrap();
        assert_eq!(old.decode(&rich).unwrap(), sample());
        // One that was not refuses clearly (never a wrong event).
        assert!(matches!(
            v1.decode(&rich),
            Err(CodecError::UnknownSchema(_))
        ));
        assert_eq!(header_value(b"short"), "");
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
            (s(), s(), s(), s()),
        )
            .prop_map(|(a, b, c, h)| AgentEvent {
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
                project_id: h.0,
                machine_id: h.1,
                workspace_id: h.2,
                session_id: h.3,
            })
    }

    proptest::proptest! {
        #[test]
        fn hand_written_codec_matches_apache_avro(e in arb_event()) {
            let c = Codec::current();
            // The generic path over the schema the fast path picked.
            let generic = if e.has_hierarchy() {
                Codec::new(AGENT_EVENT_V2).unwrap()
            } else {
                Codec::v1()
            };
            let fast = c.encode(&e).unwrap();
            // apache-avro reads what we write, we read what it writes, both round-trip.
            proptest::prop_assert_eq!(&generic_decode(&c, &fast), &e);
            proptest::prop_assert_eq!(&c.decode(&generic_encode(&generic, &e)).unwrap(), &e);
            proptest::prop_assert_eq!(&c.decode(&fast).unwrap(), &e);
            if e.attributes.len() <= 1 {
                proptest::prop_assert_eq!(fast, generic_encode(&generic, &e));
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
            let c = Codec::current();
            for e in [sample(), with_hierarchy(sample())] {
                let mut bytes = c.encode(&e).unwrap()[..10].to_vec();
                bytes.extend(tail.iter().copied());
                let _ = c.decode(&bytes);
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let c = Codec::current();
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
