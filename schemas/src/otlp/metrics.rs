//! OTLP metrics: Claude Code's usage counters (`claude_code.token.usage` by
//! `type`, `claude_code.cost.usage`) become `llm_call` events carrying one
//! export interval's tokens and cost per session and model.
//!
//! Counters come cumulative (a running total since the stream's start) or
//! delta (each point an increment). [`points`] reads the data points of the
//! mapped metrics, each with the identity of its stream; the caller turns
//! cumulative values into increments with the state it keeps per stream
//! (the gateway: `otlp_metric_streams`, see `ingest-gateway/src/metric_state.rs`),
//! then [`usage_events`] folds the increments of one session, model and
//! time into one event. No I/O here: the fuzz target runs the same code.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point::Value as Number, AggregationTemporality,
};
use serde_json::{Map, Value};

pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use super::attrs::{render, Attrs, Place};
use super::{Format, OtlpError};
use crate::batch::Rejected;
use crate::validate::{event_from_str, ValidationLimits};
use crate::AgentEvent;

/// Names the deterministic ids of usage events.
const USAGE_EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x51a7_93e0_2cd4_4b6f_8e15_c03a_9f72_d6b8);

pub const COST: &str = "claude_code.cost.usage";
pub const TOKENS: &str = "claude_code.token.usage";

/// `claude_code.token.usage`'s `type` attribute → the event's token field.
fn token_field(kind: &str) -> Option<&'static str> {
    match kind {
        "input" => Some("input_tokens"),
        "output" => Some("output_tokens"),
        "cacheRead" => Some("cache_read_tokens"),
        "cacheCreation" => Some("cache_write_tokens"),
        _ => None,
    }
}

/// Attributes that name a stream but are not copied to events.
const NOT_COPIED: &[&str] = &["type", "model"];

/// One data point of a mapped counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position of the metric in the request (for refusals).
    pub index: usize,
    /// `cost` (USD) or the token field it adds to.
    pub field: &'static str,
    /// The stream: the metric, the resource's and the point's attributes
    /// (sorted). The same series of the same exporter has the same key.
    pub stream: String,
    pub cumulative: bool,
    pub start_ns: u64,
    pub time_ns: u64,
    pub value: f64,
    /// Session (the run), model, agent (the resource's `service.name`).
    pub session: Option<String>,
    pub model: Option<String>,
    pub agent: String,
    /// Project, machine, workspace (see [`super::attrs::Place`]).
    pub(super) place: Place,
    /// Attributes for the event (resource's and point's, not the above).
    pub attributes: BTreeMap<String, String>,
}

/// Decode an `ExportMetricsServiceRequest`. Never panics.
pub fn decode_metrics(
    body: &[u8],
    format: Format,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    match format {
        Format::Protobuf => <ExportMetricsServiceRequest as prost::Message>::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string())),
        Format::Json => serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string())),
    }
}

/// Encode a metrics answer in the request's format.
pub fn encode_metrics_response(response: &ExportMetricsServiceResponse, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => prost::Message::encode_to_vec(response),
        Format::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// The data points of the mapped counters, and how many data points of
/// other metrics (or of other shapes) were ignored.
pub fn points(
    request: &ExportMetricsServiceRequest,
    limits: &ValidationLimits,
) -> (Vec<Point>, usize) {
    let mut out = Vec::new();
    let mut ignored = 0;
    let mut index = 0;
    for rm in &request.resource_metrics {
        let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let r = Attrs::new(resource);
        let agent = r
            .text("service.name")
            .unwrap_or_else(|| "claude-code".into());
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let i = index;
                index += 1;
                let sum = match (&metric.data, metric.name.as_str()) {
                    (Some(Data::Sum(s)), COST | TOKENS) => s,
                    (Some(Data::Sum(s)), _) => {
                        ignored += s.data_points.len();
                        continue;
                    }
                    (Some(Data::Gauge(g)), _) => {
                        ignored += g.data_points.len();
                        continue;
                    }
                    (Some(Data::Histogram(h)), _) => {
                        ignored += h.data_points.len();
                        continue;
                    }
                    (Some(Data::ExponentialHistogram(h)), _) => {
                        ignored += h.data_points.len();
                        continue;
                    }
                    (Some(Data::Summary(s)), _) => {
                        ignored += s.data_points.len();
                        continue;
                    }
                    (None, _) => continue,
                };
                let cumulative =
                    sum.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                for p in &sum.data_points {
                    let a = Attrs::new(&p.attributes);
                    let field = if metric.name == COST {
                        "cost"
                    } else {
                        match a.text("type").as_deref().and_then(token_field) {
                            Some(f) => f,
                            None => {
                                ignored += 1;
                                continue;
                            }
                        }
                    };
                    let value = match p.value {
                        Some(Number::AsDouble(x)) => x,
                        Some(Number::AsInt(n)) => n as f64,
                        None => {
                            ignored += 1;
                            continue;
                        }
                    };
                    let (stream, attributes) =
                        identity(&metric.name, resource, &p.attributes, limits);
                    out.push(Point {
                        index: i,
                        field,
                        stream,
                        cumulative,
                        start_ns: p.start_time_unix_nano,
                        time_ns: p.time_unix_nano,
                        value,
                        session: a.text("session.id").or_else(|| r.text("session.id")),
                        model: a.text("model"),
                        agent: agent.clone(),
                        place: Place::of(&a, &r),
                        attributes,
                    });
                }
            }
        }
    }
    (out, ignored)
}

/// A stream's key (the metric and every attribute, sorted, the point's
/// winning over the resource's) and the attributes its events carry.
fn identity(
    metric: &str,
    resource: &[KeyValue],
    point: &[KeyValue],
    limits: &ValidationLimits,
) -> (String, BTreeMap<String, String>) {
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    for kv in resource.iter().chain(point.iter()) {
        if let Some(v) = kv
            .value
            .as_ref()
            .and_then(|v| render(v, limits.max_message_len))
        {
            all.insert(kv.key.clone(), v);
        }
    }
    let key = format!(
        "{metric}\u{1f}{}",
        serde_json::to_string(&all).unwrap_or_default()
    );
    let attributes = all
        .into_iter()
        .filter(|(k, _)| !k.is_empty() && !NOT_COPIED.contains(&k.as_str()))
        .collect();
    (key, attributes)
}

/// What a request's usage points became.
#[derive(Debug, Default)]
pub struct MappedMetrics {
    /// Data points in the request that were read (of the mapped counters).
    pub points: usize,
    /// Data points of other metrics, or not mapped.
    pub ignored: usize,
    /// Points already counted (a re-export, an older point, an interval with
    /// no increase).
    pub unchanged: usize,
    pub accepted: Vec<AgentEvent>,
    /// Refused events; `index` is the metric's position in the request.
    pub rejected: Vec<Rejected>,
}

impl MappedMetrics {
    pub fn rejected_points(&self) -> usize {
        let mut idx: Vec<usize> = self.rejected.iter().map(|r| r.index).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.len()
    }

    /// The OTLP answer.
    pub fn response(&self) -> ExportMetricsServiceResponse {
        let rejected = self.rejected_points();
        let error_message = if rejected > 0 {
            let reasons: Vec<String> = self
                .rejected
                .iter()
                .take(5)
                .map(|r| format!("metric {}: field `{}`: {}", r.index, r.field, r.error))
                .collect();
            format!("{rejected} data points rejected: {}", reasons.join("; "))
        } else if self.ignored > 0 {
            format!(
                "{} of {} data points ignored: not a usage counter this endpoint maps \
                 ({COST}, {TOKENS} by type)",
                self.ignored,
                self.ignored + self.points
            )
        } else {
            return ExportMetricsServiceResponse {
                partial_success: None,
            };
        };
        ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected as i64,
                error_message,
            }),
        }
    }
}

/// Fold the increments (`deltas[i]` of `points[i]`, `None`: already
/// counted) of each (agent, session, model, time) into one `llm_call`
/// event: tokens by type, and the cost as the client's. Its id is fixed by
/// the org, the group and the start of the interval, so a re-export that
/// recomputes the same increments is the same event.
pub fn usage_events(
    points: &[Point],
    deltas: &[Option<f64>],
    ignored: usize,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> MappedMetrics {
    let mut out = MappedMetrics {
        points: points.len(),
        ignored,
        ..MappedMetrics::default()
    };
    type Key<'a> = (&'a str, Option<&'a str>, Option<&'a str>, u64);
    let mut groups: BTreeMap<Key<'_>, Vec<(&Point, f64)>> = BTreeMap::new();
    for (p, d) in points.iter().zip(deltas) {
        match d {
            Some(d) if *d > 0.0 => groups
                .entry((
                    &p.agent,
                    p.session.as_deref(),
                    p.model.as_deref(),
                    p.time_ns,
                ))
                .or_default()
                .push((p, *d)),
            _ => out.unchanged += 1,
        }
    }
    for ((agent, session, model, time_ns), parts) in groups {
        let index = parts[0].0.index;
        let mut e = Map::new();
        let mut attributes = Map::new();
        for (p, d) in &parts {
            match p.field {
                "cost" => {
                    let c = e.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0) + d;
                    e.insert("cost_usd".into(), Value::from(c));
                }
                field => {
                    let n = e.get(field).and_then(Value::as_i64).unwrap_or(0) + d.round() as i64;
                    e.insert(field.into(), Value::from(n));
                }
            }
            for (k, v) in &p.attributes {
                if attributes.len() < limits.max_attributes.saturating_sub(2) {
                    attributes
                        .entry(k.clone())
                        .or_insert_with(|| Value::from(v.clone()));
                }
            }
        }
        attributes.insert("agent_kind".into(), "claude-code".into());
        attributes.insert("otel.source".into(), "metrics".into());
        let start = parts.iter().map(|(p, _)| p.start_ns).min().unwrap_or(0);
        let identity = format!(
            "{org_id}\u{1f}{agent}\u{1f}{}\u{1f}{}\u{1f}{time_ns}",
            session.unwrap_or(""),
            model.unwrap_or("")
        );
        let id = uuid::Uuid::new_v5(&USAGE_EVENT_NAMESPACE, identity.as_bytes());
        let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(time_ns).unwrap_or(i64::MAX));
        e.insert("event_id".into(), Value::from(id.to_string()));
        e.insert("type".into(), "llm_call".into());
        e.insert("agent_id".into(), Value::from(agent));
        e.insert(
            "run_id".into(),
            Value::from(session.unwrap_or("claude-code-unknown-session")),
        );
        if let Some((p, _)) = parts.first() {
            p.place.insert_into(&mut e, session);
        }
        e.insert("provider".into(), "anthropic".into());
        if let Some(m) = model {
            e.insert("model".into(), Value::from(m));
        }
        e.insert("status".into(), "ok".into());
        e.insert(
            "timestamp".into(),
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        // The interval the usage covers (delta: since its start; cumulative:
        // since the previous point the gateway saw).
        attributes.insert(
            "otel.interval_start_unix_nano".into(),
            Value::from(start.to_string()),
        );
        e.insert("attributes".into(), Value::Object(attributes));
        match event_from_str(&Value::Object(e).to_string(), org_id, now_us, limits) {
            Ok(ev) => out.accepted.push(ev),
            Err(err) => out.rejected.push(Rejected {
                index,
                field: err.field,
                error: err.error,
            }),
        }
    }
    out
}

/// Increments of delta points (their values); cumulative points need the
/// stream state and are `None` here.
pub fn delta_increments(points: &[Point]) -> Vec<Option<f64>> {
    points
        .iter()
        .map(|p| (!p.cumulative).then_some(p.value))
        .collect()
}
