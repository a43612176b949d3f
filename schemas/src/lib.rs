//! The AgentOps v1 event contract.
//!
//! `avro/agent_event.v1.avsc` is the source of truth; [`AgentEvent`] mirrors it.
//! [`validate`] turns client JSON into events with per-field errors, [`codec`]
//! writes and reads Kafka records, [`otlp`] maps OpenTelemetry GenAI spans to
//! events, [`histogram`] defines the latency buckets the aggregates store.

pub mod batch;
pub mod binary;
pub mod codec;
pub mod correction;
pub mod event;
pub mod histogram;
pub mod loose;
pub mod otlp;
pub mod validate;

pub use codec::{Codec, CodecError};
pub use event::{AgentEvent, EventType};
pub use validate::{FieldError, ValidationLimits};
