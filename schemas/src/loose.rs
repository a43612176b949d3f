//! Borrowing, type-tolerant JSON input types: every field deserializes whatever
//! JSON it holds (so one wrong type becomes a field error, not a parse error of
//! the whole batch), and strings without escapes are borrowed, not copied.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Any JSON value, keeping only what validation needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Loose<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Integers beyond i64 and all non-integers.
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl<'a> Loose<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Loose::Int(i) => Some(*i as f64),
            Loose::Float(f) => Some(*f),
            _ => None,
        }
    }
}

struct LooseVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Loose::Float(v as f64), Loose::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
}

/// A JSON object of loose values, or a note of what else it was.
#[derive(Debug, Clone, PartialEq)]
pub enum LooseMap<'a> {
    Map(Vec<(Cow<'a, str>, Loose<'a>)>),
    NotAMap,
}

struct MapVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for MapVisitor<'a> {
    type Value = LooseMap<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<Cow<'a, str>, Loose<'a>>()? {
            out.push((k, v));
        }
        Ok(LooseMap::Map(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        LooseVisitor(std::marker::PhantomData)
            .visit_seq(seq)
            .map(|_| LooseMap::NotAMap)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(LooseMap::NotAMap)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LooseMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MapVisitor(std::marker::PhantomData))
    }
}

/// One client event as sent, before validation. Unknown fields are ignored;
/// `org_id` in the body is ignored too (the org comes from the API key).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventIn<'a> {
    #[serde(borrow)]
    pub event_id: Option<Loose<'a>>,
    #[serde(borrow, rename = "type")]
    pub event_type: Option<Loose<'a>>,
    #[serde(borrow)]
    pub agent_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub timestamp: Option<Loose<'a>>,
    #[serde(borrow)]
    pub workflow_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub run_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub status: Option<Loose<'a>>,
    #[serde(borrow)]
    pub latency_ms: Option<Loose<'a>>,
    #[serde(borrow)]
    pub provider: Option<Loose<'a>>,
    #[serde(borrow)]
    pub model: Option<Loose<'a>>,
    #[serde(borrow)]
    pub input_tokens: Option<Loose<'a>>,
    #[serde(borrow)]
    pub output_tokens: Option<Loose<'a>>,
    #[serde(borrow)]
    pub cache_read_tokens: Option<Loose<'a>>,
    #[serde(borrow)]
    pub cache_write_tokens: Option<Loose<'a>>,
    #[serde(borrow)]
    pub reasoning_tokens: Option<Loose<'a>>,
    #[serde(borrow)]
    pub cost_usd: Option<Loose<'a>>,
    #[serde(borrow)]
    pub tool_name: Option<Loose<'a>>,
    #[serde(borrow)]
    pub error_type: Option<Loose<'a>>,
    #[serde(borrow)]
    pub error_message: Option<Loose<'a>>,
    #[serde(borrow)]
    pub trace_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub span_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub project_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub machine_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub workspace_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub session_id: Option<Loose<'a>>,
    #[serde(borrow)]
    pub attributes: Option<LooseMap<'a>>,
}
