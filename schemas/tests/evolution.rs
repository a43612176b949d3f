//! Schema evolution: readers resolve records written with a newer schema
//! (one more optional field) and newer readers resolve older records.

#![allow(
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use agentops_schemas::codec::AGENT_EVENT_V1;
use agentops_schemas::{AgentEvent, Codec};
use apache_avro::types::Value;

const V2: &str = include_str!("fixtures/agent_event.v2-test.avsc");

fn sample() -> AgentEvent {
    AgentEvent {
        event_id: "0b8f4c1e-3d2a-4f7b-9c11-7e5d2a9b8c01".into(),
        org_id: "org".into(),
        timestamp: 1_790_000_000_000_000,
        agent_id: "agent".into(),
        event_type: "run_completed".into(),
        run_id: Some("r1".into()),
        latency_ms: Some(1234),
        ..Default::default()
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    match v {
        Value::Record(fields) => &fields.iter().find(|(n, _)| n == name).expect("field").1,
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn v1_reader_decodes_a_record_written_with_a_newer_schema() {
    let writer_v2 = Codec::new(V2).unwrap();
    let mut value = apache_avro::to_value(sample()).unwrap();
    if let Value::Record(fields) = &mut value {
        fields.push(("sdk_version".into(), Value::String("py-1.2".into())));
    }
    let bytes = writer_v2.encode_value(value).unwrap();

    // A v1 reader that does not know v2 refuses clearly ...
    assert!(Codec::v1()
        .decode(&bytes)
        .unwrap_err()
        .to_string()
        .contains("unknown writer schema"));
    // ... and one that knows the writer schema resolves it, dropping the new field.
    let reader_v1 = Codec::v1().with_writer(V2).unwrap();
    assert_eq!(reader_v1.decode(&bytes).unwrap(), sample());
}

#[test]
fn newer_reader_decodes_a_v1_record_with_the_default() {
    let bytes = Codec::v1().encode(&sample()).unwrap();
    let reader_v2 = Codec::new(V2).unwrap().with_writer(AGENT_EVENT_V1).unwrap();
    let value = reader_v2.decode_value(&bytes).unwrap();
    assert_eq!(
        field(&value, "sdk_version"),
        &Value::Union(0, Box::new(Value::Null))
    );
    assert_eq!(field(&value, "agent_id"), &Value::String("agent".into()));
    // The typed decode ignores the unknown field.
    assert_eq!(reader_v2.decode(&bytes).unwrap(), sample());
}
