//! Reading span attributes: lookups by key, and values as event attribute text.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use serde_json::{json, Map, Value};

/// A span's attributes by key (the first of a repeated key wins).
pub(super) struct Attrs<'s>(HashMap<&'s str, &'s AnyValue>);

impl<'s> Attrs<'s> {
    pub(super) fn new(kvs: &'s [KeyValue]) -> Self {
        let mut m = HashMap::with_capacity(kvs.len());
        for kv in kvs {
            if let Some(v) = &kv.value {
                m.entry(kv.key.as_str()).or_insert(v);
            }
        }
        Attrs(m)
    }

    /// A scalar attribute as non-empty text.
    pub(super) fn text(&self, key: &str) -> Option<String> {
        let s = match self.0.get(key)?.value.as_ref()? {
            Any::StringValue(s) => s.clone(),
            Any::IntValue(n) => n.to_string(),
            Any::BoolValue(b) => b.to_string(),
            Any::DoubleValue(x) => x.to_string(),
            _ => return None,
        };
        (!s.is_empty()).then_some(s)
    }

    pub(super) fn text_of(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.text(k))
    }

    /// An integer attribute (an int, an integral double or a decimal string).
    pub(super) fn int(&self, key: &str) -> Option<i64> {
        match self.0.get(key)?.value.as_ref()? {
            Any::IntValue(n) => Some(*n),
            Any::DoubleValue(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(*x as i64),
            Any::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(super) fn int_of(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.int(k))
    }
}

/// Where a record's work happened: the event contract's hierarchy fields
/// (project, machine, workspace), from the record's attributes first, then
/// its resource's. Set them with `OTEL_RESOURCE_ATTRIBUTES`, e.g.
/// `agentops.project.id=github.com/acme/shop,agentops.workspace.id=shop-main`;
/// the machine defaults to the OTel `host.id` / `host.name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) project: Option<String>,
    pub(super) machine: Option<String>,
    pub(super) workspace: Option<String>,
}

pub(super) const PROJECT_KEYS: &[&str] = &["agentops.project.id", "vcs.repository.url.full"];
pub(super) const MACHINE_KEYS: &[&str] = &["agentops.machine.id", "host.id", "host.name"];
pub(super) const WORKSPACE_KEYS: &[&str] = &["agentops.workspace.id"];
/// Attributes naming the session, in order (GenAI semconv, then Claude Code's).
pub(super) const SESSION_KEYS: &[&str] = &["gen_ai.conversation.id", "session.id"];

impl Place {
    pub(super) fn of(record: &Attrs<'_>, resource: &Attrs<'_>) -> Place {
        let pick = |keys: &[&str]| record.text_of(keys).or_else(|| resource.text_of(keys));
        Place {
            project: pick(PROJECT_KEYS),
            machine: pick(MACHINE_KEYS),
            workspace: pick(WORKSPACE_KEYS),
        }
    }

    /// Add the fields (and `session_id`) to a client-JSON event.
    pub(super) fn insert_into(&self, e: &mut Map<String, Value>, session: Option<&str>) {
        for (field, v) in [
            ("project_id", self.project.as_deref()),
            ("machine_id", self.machine.as_deref()),
            ("workspace_id", self.workspace.as_deref()),
            ("session_id", session),
        ] {
            if let Some(v) = v {
                e.insert(field.into(), Value::from(v));
            }
        }
    }
}

/// An attribute value as text: scalars as such, arrays and maps as JSON,
/// bytes as hex; at most about `room` bytes (validation truncates exactly).
pub(super) fn render(v: &AnyValue, room: usize) -> Option<String> {
    let s = match v.value.as_ref()? {
        Any::StringValue(s) => {
            let mut end = s.len().min(room);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_owned()
        }
        Any::BoolValue(b) => b.to_string(),
        Any::IntValue(n) => n.to_string(),
        Any::DoubleValue(x) => x.to_string(),
        Any::BytesValue(b) => hex::encode(&b[..b.len().min(room / 2 + 1)]),
        Any::ArrayValue(_) | Any::KvlistValue(_) => {
            let mut budget = room.saturating_add(1);
            to_json(v, &mut budget, 0).to_string()
        }
        Any::StringValueStrindex(_) => return None,
    };
    Some(s)
}

/// JSON of a nested value, stopping once `budget` bytes of text are spent
/// (and past 16 levels), so a huge attribute costs bounded work.
fn to_json(v: &AnyValue, budget: &mut usize, depth: usize) -> Value {
    if *budget == 0 || depth > 16 {
        return Value::Null;
    }
    let v = match v.value.as_ref() {
        None | Some(Any::StringValueStrindex(_)) => Value::Null,
        Some(Any::ArrayValue(a)) => {
            let mut out = Vec::new();
            for x in &a.values {
                if *budget == 0 {
                    break;
                }
                out.push(to_json(x, budget, depth + 1));
            }
            Value::Array(out)
        }
        Some(Any::KvlistValue(kv)) => {
            let mut out = Map::new();
            for x in &kv.values {
                if *budget == 0 {
                    break;
                }
                *budget = budget.saturating_sub(x.key.len() + 3);
                let val = x
                    .value
                    .as_ref()
                    .map_or(Value::Null, |v| to_json(v, budget, depth + 1));
                out.insert(x.key.clone(), val);
            }
            Value::Object(out)
        }
        Some(_) => json!(render(v, *budget).unwrap_or_default()),
    };
    *budget = budget.saturating_sub(match &v {
        Value::String(s) => s.len() + 2,
        _ => 2,
    });
    v
}
