//! OTLP metrics: Claude Code's usage counters (`claude_code.token.usage` by
//! `type`, `claude_code.cost.usage`) and Codex's (`codex.turn.token_usage`,
//! a histogram by `token_type` whose sums are the tokens, and
//! `codex.turn.cost_microusd`) become `llm_call` events carrying one export
//! interval's tokens and cost per session and model.
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
/// Codex's tokens per turn: a histogram, one point per `token_type`, whose
/// sum is the tokens (codex-rs/otel `TURN_TOKEN_USAGE_METRIC`).
pub const CODEX_TOKENS: &str = "codex.turn.token_usage";
/// Codex's cost per turn in micro-USD (`TURN_COST_MICROUSD_METRIC`).
pub const CODEX_COST: &str = "codex.turn.cost_microusd";

/// The coding agent whose metric a point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    ClaudeCode,
    Codex,
}

impl Source {
    fn kind(self) -> &'static str {
        match self {
            Source::ClaudeCode => "claude-code",
            Source::Codex => "codex",
        }
    }

    fn provider(self) -> &'static str {
        match self {
            Source::ClaudeCode => "anthropic",
            Source::Codex => "openai",
        }
    }
}

/// Codex's `token_type` → the field it adds to. Its `input` includes the
/// cached input and its `output` the reasoning (OpenAI's convention): they
/// go to `openai_input` / `openai_output` and become the contract's
/// uncached input and visible output when an event is folded
/// ([`usage_events`]); `total` (the sum of the others) is not counted.
fn codex_token_field(kind: &str) -> Option<&'static str> {
    match kind {
        "input" => Some(OPENAI_INPUT),
        "cached_input" => Some("cache_read_tokens"),
        "output" => Some(OPENAI_OUTPUT),
        "reasoning_output" => Some("reasoning_tokens"),
        _ => None,
    }
}

const OPENAI_INPUT: &str = "openai_input";
/// The field of `codex.turn.cost_microusd` (divided into USD when folded).
const CODEX_MICRO_USD: &str = "cost_microusd";
const OPENAI_OUTPUT: &str = "openai_output";

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
const NOT_COPIED: &[&str] = &["type", "token_type", "model"];

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
    /// Whose metric it is.
    pub source: Source,
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
        let service = r.text("service.name");
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let i = index;
                index += 1;
                // (attributes, start, time, value) of the mapped metrics'
                // points: a counter's value, a histogram's sum.
                type Raw<'p> = (&'p [KeyValue], u64, u64, Option<f64>);
                let (source, temporality, raw): (Source, i32, Vec<Raw<'_>>) =
                    match (&metric.data, metric.name.as_str()) {
                        (Some(Data::Sum(s)), name @ (COST | TOKENS | CODEX_COST)) => (
                            if name == CODEX_COST {
                                Source::Codex
                            } else {
                                Source::ClaudeCode
                            },
                            s.aggregation_temporality,
                            s.data_points
                                .iter()
                                .map(|p| {
                                    let v = match p.value {
                                        Some(Number::AsDouble(x)) => Some(x),
                                        Some(Number::AsInt(n)) => Some(n as f64),
                                        None => None,
                                    };
                                    (
                                        &p.attributes[..],
                                        p.start_time_unix_nano,
                                        p.time_unix_nano,
                                        v,
                                    )
                                })
                                .collect(),
                        ),
                        (Some(Data::Histogram(h)), CODEX_TOKENS) => (
                            Source::Codex,
                            h.aggregation_temporality,
                            h.data_points
                                .iter()
                                .map(|p| {
                                    (
                                        &p.attributes[..],
                                        p.start_time_unix_nano,
                                        p.time_unix_nano,
                                        p.sum,
                                    )
                                })
                                .collect(),
                        ),
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
                let cumulative = temporality == AggregationTemporality::Cumulative as i32;
                for (attrs, start_ns, time_ns, value) in raw {
                    let a = Attrs::new(attrs);
                    let field = match metric.name.as_str() {
                        COST => Some("cost"),
                        CODEX_COST => Some(CODEX_MICRO_USD),
                        CODEX_TOKENS => a.text("token_type").as_deref().and_then(codex_token_field),
                        _ => a.text("type").as_deref().and_then(token_field),
                    };
                    let (Some(field), Some(value)) = (field, value) else {
                        ignored += 1;
                        continue;
                    };
                    let (stream, attributes) = identity(&metric.name, resource, attrs, limits);
                    let session_keys: &[&str] = match source {
                        Source::ClaudeCode => &["session.id"],
                        // Codex's metrics name no conversation today; take
                        // one if a later version (or a resource) adds it.
                        Source::Codex => &["conversation.id", "session.id"],
                    };
                    out.push(Point {
                        index: i,
                        field,
                        stream,
                        cumulative,
                        start_ns,
                        time_ns,
                        value,
                        source,
                        session: a.text_of(session_keys).or_else(|| r.text_of(session_keys)),
                        model: a.text("model"),
                        agent: service.clone().unwrap_or_else(|| source.kind().into()),
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
                 ({COST}, {TOKENS} by type, {CODEX_TOKENS} by token_type, {CODEX_COST})",
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
    type Key<'a> = (Source, &'a str, Option<&'a str>, Option<&'a str>, u64);
    let mut groups: BTreeMap<Key<'_>, Vec<(&Point, f64)>> = BTreeMap::new();
    for (p, d) in points.iter().zip(deltas) {
        match d {
            Some(d) if *d > 0.0 => groups
                .entry((
                    p.source,
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
    for ((source, agent, session, model, time_ns), parts) in groups {
        let index = parts[0].0.index;
        let mut e = Map::new();
        let mut attributes = Map::new();
        for (p, d) in &parts {
            match p.field {
                "cost" | CODEX_MICRO_USD => {
                    let usd = if p.field == "cost" { *d } else { d / 1e6 };
                    let c = e.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0) + usd;
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
        // OpenAI's convention (Codex): input includes the cached input,
        // output the reasoning; the contract counts them apart.
        let take = |e: &mut Map<String, Value>, k: &str| e.remove(k).and_then(|v| v.as_i64());
        let count = |e: &Map<String, Value>, k: &str| e.get(k).and_then(Value::as_i64).unwrap_or(0);
        if let Some(all) = take(&mut e, OPENAI_INPUT) {
            let uncached = (all - count(&e, "cache_read_tokens")).max(0);
            e.insert("input_tokens".into(), Value::from(uncached));
        }
        if let Some(all) = take(&mut e, OPENAI_OUTPUT) {
            let visible = (all - count(&e, "reasoning_tokens")).max(0);
            e.insert("output_tokens".into(), Value::from(visible));
        }
        attributes.insert("agent_kind".into(), source.kind().into());
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
        let unknown = format!("{}-unknown-session", source.kind());
        e.insert("run_id".into(), Value::from(session.unwrap_or(&unknown)));
        if let Some((p, _)) = parts.first() {
            p.place.insert_into(&mut e, session);
        }
        e.insert("provider".into(), source.provider().into());
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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    const T0: u64 = 1_795_341_600_000_000_000;
    const NOW: i64 = (T0 / 1000) as i64 + 60_000_000;

    /// Codex's turn metrics as codex-rs/otel records them: the token
    /// histogram by `token_type` with its session tags, the cost counter.
    fn codex_request(temporality: AggregationTemporality) -> ExportMetricsServiceRequest {
        let tags = |extra: Vec<KeyValue>| -> Vec<KeyValue> {
            let mut t = vec![
                kv("auth_mode", "api_key"),
                kv("session_source", "cli"),
                kv("originator", "codex_cli_rs"),
                kv("model", "gpt-5-codex"),
                kv("app.version", "0.60.0"),
            ];
            t.extend(extra);
            t
        };
        let hist = |token_type: &str, sum: f64| HistogramDataPoint {
            attributes: tags(vec![kv("token_type", token_type)]),
            start_time_unix_nano: T0,
            time_unix_nano: T0 + 60_000_000_000,
            count: 1,
            sum: Some(sum),
            ..Default::default()
        };
        let metrics = vec![
            Metric {
                name: CODEX_TOKENS.into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![
                        hist("total", 1_500.0),
                        hist("input", 1_200.0),
                        hist("cached_input", 1_000.0),
                        hist("output", 300.0),
                        hist("reasoning_output", 100.0),
                    ],
                    aggregation_temporality: temporality as i32,
                })),
                ..Default::default()
            },
            Metric {
                name: CODEX_COST.into(),
                data: Some(Data::Sum(Sum {
                    data_points: vec![NumberDataPoint {
                        attributes: tags(vec![]),
                        start_time_unix_nano: T0,
                        time_unix_nano: T0 + 60_000_000_000,
                        value: Some(Number::AsInt(25_000)),
                        ..Default::default()
                    }],
                    aggregation_temporality: temporality as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            },
            Metric {
                name: "codex.turn.e2e_duration_ms".into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![hist("total", 9.0)],
                    aggregation_temporality: temporality as i32,
                })),
                ..Default::default()
            },
        ];
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "codex_exec"), kv("host.name", "ci-7")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn codex_turn_usage_becomes_one_priced_call_in_the_contracts_convention() {
        let req = codex_request(AggregationTemporality::Delta);
        let limits = ValidationLimits::default();
        let (points, ignored) = points(&req, &limits);
        // `total` and the duration histogram are not usage.
        assert_eq!((points.len(), ignored), (5, 2));
        assert!(points
            .iter()
            .all(|p| p.source == Source::Codex && !p.cumulative));
        let m = usage_events(
            &points,
            &delta_increments(&points),
            ignored,
            "acme",
            NOW,
            &limits,
        );
        assert_eq!(m.rejected, vec![]);
        let [e] = &m.accepted[..] else {
            panic!("{m:?}")
        };
        assert_eq!(e.event_type, "llm_call");
        assert_eq!(e.agent_id, "codex_exec");
        assert_eq!(e.provider.as_deref(), Some("openai"));
        assert_eq!(e.model.as_deref(), Some("gpt-5-codex"));
        // 1,200 input of which 1,000 cached; 300 output of which 100 reasoning.
        assert_eq!(e.input_tokens, Some(200));
        assert_eq!(e.cache_read_tokens, Some(1_000));
        assert_eq!(e.output_tokens, Some(200));
        assert_eq!(e.reasoning_tokens, Some(100));
        assert!((e.cost_usd.unwrap_or_default() - 0.025).abs() < 1e-12);
        assert_eq!(e.run_id.as_deref(), Some("codex-unknown-session"));
        assert_eq!(e.machine_id.as_deref(), Some("ci-7"));
        assert_eq!(e.attributes["agent_kind"], "codex");
        assert!(!e.attributes.contains_key("token_type"));
        // The same export again is the same event.
        let again = usage_events(&points, &delta_increments(&points), 0, "acme", NOW, &limits);
        assert_eq!(again.accepted[0].event_id, e.event_id);
    }

    #[test]
    fn cumulative_codex_points_wait_for_their_stream_state() {
        let req = codex_request(AggregationTemporality::Cumulative);
        let (points, _) = points(&req, &ValidationLimits::default());
        assert!(points.iter().all(|p| p.cumulative));
        // Each token type is a stream of its own (so its increments are its own).
        let mut streams: Vec<&str> = points.iter().map(|p| p.stream.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        assert_eq!(streams.len(), 5);
        assert!(delta_increments(&points).iter().all(Option::is_none));
    }
}
