//! Client JSON → [`AgentEvent`], one event at a time, with errors that name
//! the offending field. Never panics on any input.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::loose::{EventIn, Loose, LooseMap};

use crate::event::{AgentEvent, EventType};

/// Why one event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub error: String,
}

impl FieldError {
    fn new(field: &str, error: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            error: error.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.error)
    }
}

/// Bounds applied to every event.
#[derive(Debug, Clone)]
pub struct ValidationLimits {
    /// Reject events older than this (late-data window), in seconds.
    pub max_age_secs: i64,
    /// Reject events further in the future than this, in seconds.
    pub max_future_secs: i64,
    pub max_string_len: usize,
    pub max_message_len: usize,
    pub max_attributes: usize,
    /// Largest token count of one kind in one event.
    pub max_tokens: i64,
    /// Largest `latency_ms`.
    pub max_latency_ms: i64,
    /// Largest `cost_usd` of one event.
    pub max_cost_usd: f64,
}

/// Bounds on counts and amounts: no sum of them in a run, agent or
/// aggregate row can overflow its column (`int8`, `float8`). A row sums at
/// most five token kinds of [`MAX_TOKENS`] per event, so it reaches int8's
/// 9.2e18 only after 1.8e10 events at the cap, all into one run, one
/// agent-day or one bucket (three weeks at 10,000 events/s). Cost sums are
/// float8 (up to 1.8e308): unreachable at [`MAX_COST_USD`] per event. A row
/// the database still refuses is dead-lettered by the projections, never
/// retried forever.
pub const MAX_TOKENS: i64 = 100_000_000;
/// 30 days in milliseconds.
pub const MAX_LATENCY_MS: i64 = 30 * 24 * 3600 * 1000;
/// See [`MAX_TOKENS`].
pub const MAX_COST_USD: f64 = 1_000_000.0;

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_age_secs: 7 * 24 * 3600,
            max_future_secs: 300,
            max_string_len: 256,
            max_message_len: 4096,
            max_attributes: 64,
            max_tokens: MAX_TOKENS,
            max_latency_ms: MAX_LATENCY_MS,
            max_cost_usd: MAX_COST_USD,
        }
    }
}

/// Validate one JSON event for `org_id`; `now_us` is the gateway's clock.
pub fn event_from_json(
    value: &Value,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<AgentEvent, FieldError> {
    // The same compact text as `value.to_string()`, written into one buffer
    // sized up front instead of a `String` grown through `fmt::Write`
    // (realloc after realloc): OTLP span mapping 18.4 -> 15.5 µs/event.
    let mut text = Vec::with_capacity(1024);
    serde_json::to_writer(&mut text, value)
        .map_err(|e| FieldError::new("(event)", e.to_string()))?;
    let text = String::from_utf8(text).map_err(|e| FieldError::new("(event)", e.to_string()))?;
    event_from_str(&text, org_id, now_us, limits)
}

/// Validate one event given as JSON text (the gateway's hot path: no
/// intermediate `Value`, strings borrowed from the request body).
pub fn event_from_str(
    json: &str,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<AgentEvent, FieldError> {
    let input: EventIn<'_> = serde_json::from_str(json).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("expected struct") {
            FieldError::new("(event)", "expected a JSON object")
        } else {
            FieldError::new("(event)", msg)
        }
    })?;
    validate(&input, org_id, now_us, limits)
}

fn validate(
    input: &EventIn<'_>,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<AgentEvent, FieldError> {
    let f = Fields { limits };
    let event_id = f.required_str("event_id", &input.event_id)?;
    let event_id = uuid::Uuid::parse_str(event_id)
        .map_err(|_| FieldError::new("event_id", "expected a UUID"))?
        .hyphenated()
        .to_string();
    let type_str = f.required_str("type", &input.event_type)?;
    let kind = EventType::parse(type_str).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        FieldError::new(
            "type",
            format!("unknown event type; expected one of {}", known.join(", ")),
        )
    })?;
    let agent_id = f.required_str("agent_id", &input.agent_id)?.to_owned();
    let timestamp = f.timestamp("timestamp", &input.timestamp)?;
    if timestamp > now_us.saturating_add(limits.max_future_secs.saturating_mul(1_000_000)) {
        return Err(FieldError::new(
            "timestamp",
            format!("more than {} s in the future", limits.max_future_secs),
        ));
    }
    if timestamp < now_us.saturating_sub(limits.max_age_secs.saturating_mul(1_000_000)) {
        return Err(FieldError::new(
            "timestamp",
            format!(
                "older than the late-data window of {} s",
                limits.max_age_secs
            ),
        ));
    }
    let run_id = f.opt_str("run_id", &input.run_id)?;
    if kind.needs_run_id() && run_id.is_none() {
        return Err(FieldError::new(
            "run_id",
            format!("required for {} events", kind.as_str()),
        ));
    }
    let cost_usd = f.opt_cost("cost_usd", &input.cost_usd)?;
    Ok(AgentEvent {
        event_id,
        org_id: org_id.to_owned(),
        timestamp,
        agent_id,
        workflow_id: f.opt_str("workflow_id", &input.workflow_id)?,
        run_id,
        event_type: kind.as_str().to_owned(),
        status: f.opt_str("status", &input.status)?,
        latency_ms: f.opt_count("latency_ms", &input.latency_ms, limits.max_latency_ms)?,
        provider: f.opt_str("provider", &input.provider)?,
        model: f.opt_str("model", &input.model)?,
        input_tokens: f.opt_count("input_tokens", &input.input_tokens, limits.max_tokens)?,
        output_tokens: f.opt_count("output_tokens", &input.output_tokens, limits.max_tokens)?,
        cache_read_tokens: f.opt_count(
            "cache_read_tokens",
            &input.cache_read_tokens,
            limits.max_tokens,
        )?,
        cache_write_tokens: f.opt_count(
            "cache_write_tokens",
            &input.cache_write_tokens,
            limits.max_tokens,
        )?,
        reasoning_tokens: f.opt_count(
            "reasoning_tokens",
            &input.reasoning_tokens,
            limits.max_tokens,
        )?,
        cost_source: cost_usd.map(|_| "client".to_owned()),
        cost_usd,
        tool_name: f.opt_str("tool_name", &input.tool_name)?,
        error_type: f.opt_str("error_type", &input.error_type)?,
        error_message: f.opt_message("error_message", &input.error_message)?,
        trace_id: f.opt_str("trace_id", &input.trace_id)?,
        span_id: f.opt_str("span_id", &input.span_id)?,
        attributes: f.attributes("attributes", &input.attributes)?,
        ingested_at: Some(now_us),
        project_id: f.opt_str("project_id", &input.project_id)?,
        machine_id: f.opt_str("machine_id", &input.machine_id)?,
        workspace_id: f.opt_str("workspace_id", &input.workspace_id)?,
        session_id: f.opt_str("session_id", &input.session_id)?,
    })
}

struct Fields<'l> {
    limits: &'l ValidationLimits,
}

type In<'v, 'a> = &'v Option<Loose<'a>>;

impl Fields<'_> {
    fn required_str<'v>(&self, name: &str, v: In<'v, '_>) -> Result<&'v str, FieldError> {
        let v = v
            .as_ref()
            .ok_or_else(|| FieldError::new(name, "is required"))?;
        let s = v
            .as_str()
            .ok_or_else(|| FieldError::new(name, "expected a string"))?;
        if s.is_empty() {
            return Err(FieldError::new(name, "must not be empty"));
        }
        if s.len() > self.limits.max_string_len {
            return Err(FieldError::new(
                name,
                format!("longer than {} bytes", self.limits.max_string_len),
            ));
        }
        // Identifiers end up in HTTP headers, chat messages, log lines and
        // URLs: no control characters (PostgreSQL cannot store U+0000
        // either), no line or paragraph separators.
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(FieldError::new(
                name,
                format!("contains a control character (U+{:04X})", u32::from(c)),
            ));
        }
        Ok(s)
    }

    fn opt_str(&self, name: &str, v: In<'_, '_>) -> Result<Option<String>, FieldError> {
        match v {
            None => Ok(None),
            Some(_) => self.required_str(name, v).map(|s| Some(s.to_owned())),
        }
    }

    fn opt_message(&self, name: &str, v: In<'_, '_>) -> Result<Option<String>, FieldError> {
        match v {
            None => Ok(None),
            Some(v) => {
                let s = v
                    .as_str()
                    .ok_or_else(|| FieldError::new(name, "expected a string"))?;
                Ok(Some(free_text(s, self.limits.max_message_len)))
            }
        }
    }

    fn opt_count(&self, name: &str, v: In<'_, '_>, max: i64) -> Result<Option<i64>, FieldError> {
        let n = match v {
            None => return Ok(None),
            Some(Loose::Int(n)) if *n >= 0 => *n,
            // Whole floats (1e3, 5.0) below 2^53, where they are exact.
            Some(Loose::Float(x)) if *x >= 0.0 && x.fract() == 0.0 && *x < 9.0e15 => *x as i64,
            Some(_) => return Err(FieldError::new(name, "expected a non-negative integer")),
        };
        if n > max {
            return Err(FieldError::new(name, format!("larger than {max}")));
        }
        Ok(Some(n))
    }

    fn opt_cost(&self, name: &str, v: In<'_, '_>) -> Result<Option<f64>, FieldError> {
        let max = self.limits.max_cost_usd;
        match v.as_ref().map(Loose::as_f64) {
            None => Ok(None),
            Some(Some(x)) if x.is_finite() && x >= 0.0 && x <= max => Ok(Some(x)),
            Some(Some(x)) if x.is_finite() && x > max => {
                Err(FieldError::new(name, format!("larger than {max}")))
            }
            Some(_) => Err(FieldError::new(name, "expected a non-negative number")),
        }
    }

    /// RFC 3339 string, or integer milliseconds since the Unix epoch.
    fn timestamp(&self, name: &str, v: In<'_, '_>) -> Result<i64, FieldError> {
        let err = || FieldError::new(name, "expected an RFC 3339 time or epoch milliseconds");
        match v {
            None => Err(FieldError::new(name, "is required")),
            Some(Loose::Str(s)) => {
                let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| err())?;
                Ok(t.timestamp_micros())
            }
            Some(Loose::Int(ms)) if (0..=i64::MAX / 1000).contains(ms) => Ok(ms * 1000),
            Some(_) => Err(err()),
        }
    }

    fn attributes(
        &self,
        name: &str,
        v: &Option<LooseMap<'_>>,
    ) -> Result<HashMap<String, String>, FieldError> {
        let entries = match v {
            None => return Ok(HashMap::new()),
            Some(LooseMap::NotAMap) => {
                return Err(FieldError::new(name, "expected an object of string values"))
            }
            Some(LooseMap::Map(entries)) => entries,
        };
        if entries.len() > self.limits.max_attributes {
            return Err(FieldError::new(
                name,
                format!("more than {} attributes", self.limits.max_attributes),
            ));
        }
        let mut out = HashMap::with_capacity(entries.len());
        for (k, v) in entries {
            let s = match v {
                Loose::Str(s) => s.to_string(),
                Loose::Int(n) => n.to_string(),
                Loose::Float(x) => x.to_string(),
                Loose::Bool(b) => b.to_string(),
                Loose::Null => continue,
                Loose::Array | Loose::Object => {
                    return Err(FieldError::new(
                        &format!("{name}.{}", truncate(k, 64)),
                        "expected a string, number or boolean",
                    ))
                }
            };
            out.insert(
                free_text(k, self.limits.max_string_len),
                free_text(&s, self.limits.max_message_len),
            );
        }
        Ok(out)
    }
}

/// Free text keeps its content but not U+0000, which PostgreSQL cannot
/// store in text or JSON: it becomes U+FFFD. At most `max` bytes *after*
/// the replacement (each NUL grows by two bytes).
fn free_text(s: &str, max: usize) -> String {
    let s = truncate(s, max);
    if s.contains('\0') {
        truncate(&s.replace('\0', "\u{FFFD}"), max)
    } else {
        s
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_790_000_000_000_000;

    fn good() -> Value {
        json!({
            "event_id": "6f1c1f0e-8a47-4a0b-9f57-3f6f0c7c2b11",
            "type": "llm_call",
            "agent_id": "agent-1",
            "timestamp": chrono::DateTime::from_timestamp_micros(NOW).unwrap().to_rfc3339(),
            "model": "gpt-4o",
            "input_tokens": 100,
            "output_tokens": 20,
            "attributes": {"team": "search", "n": 3}
        })
    }

    fn check(v: Value) -> Result<AgentEvent, FieldError> {
        event_from_json(&v, "org", NOW, &ValidationLimits::default())
    }

    #[test]
    fn accepts_a_good_event() {
        let e = check(good()).unwrap();
        assert_eq!(e.org_id, "org");
        assert_eq!(e.timestamp, NOW);
        assert_eq!(e.input_tokens, Some(100));
        assert_eq!(e.attributes["n"], "3");
        assert_eq!(e.cost_usd, None);
        assert_eq!(e.cost_source, None);
    }

    #[test]
    fn hierarchy_fields_are_read_and_checked_like_identifiers() {
        let mut v = good();
        v["project_id"] = json!("github.com/acme/shop");
        v["machine_id"] = json!("m-7");
        v["workspace_id"] = json!("shop-main");
        v["session_id"] = json!("0d9c");
        let e = check(v).unwrap();
        assert_eq!(e.project_id.as_deref(), Some("github.com/acme/shop"));
        assert_eq!(e.machine_id.as_deref(), Some("m-7"));
        assert_eq!(e.workspace_id.as_deref(), Some("shop-main"));
        assert_eq!(e.session_id.as_deref(), Some("0d9c"));
        assert!(e.has_hierarchy());
        assert!(!check(good()).unwrap().has_hierarchy());
        for field in ["project_id", "machine_id", "workspace_id", "session_id"] {
            let mut v = good();
            v[field] = json!("a\u{1b}b");
            let e = check(v).unwrap_err();
            assert_eq!(e.field, field);
            let mut v = good();
            v[field] = json!(7);
            assert_eq!(check(v).unwrap_err().field, field);
            let mut v = good();
            v[field] = json!("x".repeat(ValidationLimits::default().max_string_len + 1));
            assert_eq!(check(v).unwrap_err().field, field);
        }
    }

    #[test]
    fn nul_characters_never_reach_postgres() {
        let mut v = good();
        v["model"] = json!("gpt\u{0}4o");
        let e = check(v).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.error.as_str()),
            ("model", "contains a control character (U+0000)")
        );
        let mut v = good();
        v["error_message"] = json!("bad\u{0}byte");
        v["attributes"] = json!({"k\u{0}": "v\u{0}"});
        let e = check(v).unwrap();
        assert_eq!(e.error_message.as_deref(), Some("bad\u{FFFD}byte"));
        assert_eq!(e.attributes["k\u{FFFD}"], "v\u{FFFD}");
    }

    #[test]
    fn identifiers_refuse_control_characters() {
        for (field, bad, code) in [
            ("agent_id", "agent\nname", "U+000A"),
            ("agent_id", "a\u{1b}[31m", "U+001B"),
            ("workflow_id", "w\r1", "U+000D"),
            ("run_id", "r\u{7f}", "U+007F"),
            ("tool_name", "t\u{85}", "U+0085"),
            ("model", "m\u{2028}x", "U+2028"),
        ] {
            let mut v = good();
            v[field] = json!(bad);
            let e = check(v).unwrap_err();
            assert_eq!(e.field, field, "{bad:?}");
            assert_eq!(e.error, format!("contains a control character ({code})"));
        }
        // Free text keeps its line breaks.
        let mut v = good();
        v["error_message"] = json!("line 1\nline 2\ttab");
        assert_eq!(
            check(v).unwrap().error_message.as_deref(),
            Some("line 1\nline 2\ttab")
        );
        // Mention syntax is allowed in identifiers (escaped where it is shown).
        let mut v = good();
        v["agent_id"] = json!("<!channel> @everyone");
        assert!(check(v).is_ok());
    }

    #[test]
    fn counts_and_amounts_are_bounded() {
        for field in [
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ] {
            let mut v = good();
            v[field] = json!(MAX_TOKENS);
            assert!(check(v).is_ok(), "{field} at the cap");
            let mut v = good();
            v[field] = json!(MAX_TOKENS + 1);
            let e = check(v).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.error),
                (field, format!("larger than {MAX_TOKENS}"))
            );
            let mut v = good();
            v[field] = json!(i64::MAX);
            assert_eq!(check(v).unwrap_err().field, field);
        }
        let mut v = good();
        v["latency_ms"] = json!(MAX_LATENCY_MS + 1);
        assert_eq!(check(v).unwrap_err().field, "latency_ms");
        let mut v = good();
        v["cost_usd"] = json!(MAX_COST_USD);
        assert_eq!(check(v).unwrap().cost_usd, Some(MAX_COST_USD));
        for bad in [json!(MAX_COST_USD * 1.0001), json!(1e308)] {
            let mut v = good();
            v["cost_usd"] = bad;
            let e = check(v).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.error),
                ("cost_usd", format!("larger than {MAX_COST_USD}"))
            );
        }
    }

    #[test]
    fn huge_windows_in_limits_never_overflow() {
        let limits = ValidationLimits {
            max_age_secs: i64::MAX,
            max_future_secs: i64::MAX,
            ..ValidationLimits::default()
        };
        assert!(event_from_json(&good(), "org", NOW, &limits).is_ok());
    }

    /// Found by the json_batch fuzz target: NULs replaced after truncating
    /// grew a 256-byte attribute key to 258 bytes and a 4096-byte message
    /// to 12288.
    #[test]
    fn replacing_nul_keeps_text_within_its_limit() {
        let limits = ValidationLimits::default();
        let mut v = good();
        v["error_message"] = json!("\u{0}".repeat(limits.max_message_len));
        let key = format!("{}\u{0}", "k".repeat(limits.max_string_len - 1));
        v["attributes"] = json!({ key: format!("{}\u{0}", "v".repeat(limits.max_message_len)) });
        let e = check(v).unwrap();
        let message = e.error_message.unwrap();
        assert_eq!(message, "\u{FFFD}".repeat(limits.max_message_len / 3));
        let (k, v) = e.attributes.into_iter().next().unwrap();
        assert_eq!(k, "k".repeat(limits.max_string_len - 1));
        assert_eq!(v, "v".repeat(limits.max_message_len));
        assert_eq!(free_text("a\u{0}b", 4), "a\u{FFFD}");
        assert_eq!(free_text("a\u{0}b", 5), "a\u{FFFD}b");
    }

    #[test]
    fn org_in_body_is_ignored() {
        let mut v = good();
        v["org_id"] = json!("someone-else");
        assert_eq!(check(v).unwrap().org_id, "org");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("agent_id", Value::Null, "is required"),
            ("event_id", json!("nope"), "expected a UUID"),
            ("input_tokens", json!("ten"), "non-negative integer"),
            ("input_tokens", json!(-1), "non-negative integer"),
            ("type", json!("dance"), "unknown event type"),
            ("timestamp", json!("yesterday"), "RFC 3339"),
            ("cost_usd", json!(-0.5), "non-negative number"),
            ("attributes", json!([1]), "object"),
        ];
        for (field, value, msg) in cases {
            let mut v = good();
            v[field] = value;
            let err = check(v).unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(err.error.contains(msg), "{field}: {err}");
        }
    }

    #[test]
    fn run_events_need_a_run_id() {
        let mut v = good();
        v["type"] = json!("run_failed");
        assert_eq!(check(v).unwrap_err().field, "run_id");
    }

    #[test]
    fn rejects_future_and_too_old() {
        let mut v = good();
        v["timestamp"] = json!((NOW / 1000) + 301_000);
        assert!(check(v.clone()).unwrap_err().error.contains("future"));
        v["timestamp"] = json!((NOW / 1000) - 8 * 24 * 3_600_000);
        assert!(check(v).unwrap_err().error.contains("late-data"));
    }

    #[test]
    fn client_cost_is_marked() {
        let mut v = good();
        v["cost_usd"] = json!(0.25);
        let e = check(v).unwrap();
        assert_eq!(e.cost_usd, Some(0.25));
        assert_eq!(e.cost_source.as_deref(), Some("client"));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("event_id".to_string()),
                        Just("type".to_string()),
                        Just("agent_id".to_string()),
                        Just("timestamp".to_string()),
                        Just("attributes".to_string()),
                        Just("input_tokens".to_string()),
                        ".{0,8}".prop_map(|s: String| s)
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_events_are_well_formed(v in arb_json()) {
            if let Ok(e) = check(v) {
                prop_assert!(uuid::Uuid::parse_str(&e.event_id).is_ok());
                prop_assert!(!e.agent_id.is_empty());
                prop_assert!(EventType::parse(&e.event_type).is_some());
            }
        }

        #[test]
        fn any_single_field_corruption_is_named(field in prop::sample::select(vec!["event_id", "agent_id", "type", "timestamp"]),
                                                junk in prop_oneof![Just(json!(42.5)), Just(json!([])), Just(json!({})), Just(json!(true))]) {
            let mut v = good();
            v[field] = junk;
            let err = check(v).unwrap_err();
            prop_assert_eq!(err.field, field);
        }
    }
}
