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
}

fn fingerprint(schema: &Schema) -> [u8; 8] {
    let fp = schema.fingerprint::<Rabin>();
    let mut out = [0u8; 8];
    out.copy_from_slice(&fp.bytes[..8]);
    out
}

impl Codec {
    /// The codec for the current contract (v1).
    pub fn v1() -> Self {
        Self::new(AGENT_EVENT_V1).expect("the bundled v1 schema parses")
    }

    /// A codec whose reader and writer schema is `schema_json`.
    pub fn new(schema_json: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(schema_json)?;
        let fp = fingerprint(&schema);
        let mut writers = HashMap::new();
        writers.insert(fp, schema.clone());
        Ok(Self { schema, fingerprint: fp, writers })
    }

    /// Teach the reader another writer schema version.
    pub fn with_writer(mut self, schema_json: &str) -> Result<Self, CodecError> {
        let schema = Schema::parse_str(schema_json)?;
        self.writers.insert(fingerprint(&schema), schema);
        Ok(self)
    }

    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn encode(&self, event: &AgentEvent) -> Result<Vec<u8>, CodecError> {
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
        let reader = if fp == self.fingerprint { None } else { Some(&self.schema) };
        Ok(apache_avro::from_avro_datum(writer, &mut datum, reader)?)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<AgentEvent, CodecError> {
        Ok(apache_avro::from_value(&self.decode_value(bytes)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let c = Codec::v1();
        assert!(matches!(c.decode(b"hello"), Err(CodecError::BadFraming)));
        let mut bytes = c.encode(&sample()).unwrap();
        bytes[3] ^= 0xff;
        assert!(matches!(c.decode(&bytes), Err(CodecError::UnknownSchema(_))));
        let bytes = c.encode(&sample()).unwrap();
        assert!(c.decode(&bytes[..bytes.len() / 2]).is_err());
    }
}
