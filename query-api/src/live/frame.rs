//! Frames: the envelope `{"v":1,"type":..,"ts":..,"data":{..}}` built once
//! per event (its text shared by every client that gets it), from enriched
//! events, alert records and agent controls.

use agentops_schemas::AgentEvent;
use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::filter::FrameType;

/// One frame for one org, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) org_id: String,
    pub(crate) kind: FrameType,
    /// The agent it is about, for the `agent_id` filter.
    pub(crate) agent_id: Option<String>,
    pub(crate) text: Utf8Bytes,
}

/// The envelope's version.
pub(crate) const VERSION: u32 = 1;

fn envelope(kind: FrameType, ts: DateTime<Utc>, data: Value) -> Utf8Bytes {
    let v = json!({
        "v": VERSION,
        "type": kind.as_str(),
        "ts": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    });
    Utf8Bytes::from(v.to_string())
}

/// `{"type":"lost","data":{"frames":n}}`.
pub(crate) fn lost(frames: u64) -> Utf8Bytes {
    envelope(FrameType::Lost, Utc::now(), json!({ "frames": frames }))
}

/// The frame of a run's start, end or failure; `None` for every other
/// record on the enriched topic (calls, heartbeats, cost corrections).
pub(crate) fn from_event(e: &AgentEvent) -> Option<Frame> {
    let kind = match e.event_type.as_str() {
        "run_started" => FrameType::RunStarted,
        "run_completed" => FrameType::RunCompleted,
        "run_failed" => FrameType::RunFailed,
        _ => return None,
    };
    let ts = DateTime::from_timestamp_micros(e.timestamp).unwrap_or_else(Utc::now);
    let data = json!({
        "event_id": e.event_id,
        "run_id": e.run_id,
        "agent_id": e.agent_id,
        "workflow_id": e.workflow_id,
        "status": e.status,
        "cost_usd": e.cost_usd,
        "latency_ms": e.latency_ms,
        "error_type": e.error_type,
        "error_message": e.error_message,
    });
    Some(Frame {
        org_id: e.org_id.clone(),
        kind,
        agent_id: Some(e.agent_id.clone()),
        text: envelope(kind, ts, data),
    })
}

/// The fields of an alert record (the processors' JSON on the alerts topic)
/// that a frame shows.
#[derive(Debug, Deserialize)]
pub(crate) struct AlertRecord {
    pub(crate) alert_id: String,
    pub(crate) org_id: String,
    pub(crate) source: String,
    #[serde(default)]
    source_id: Option<String>,
    kind: String,
    #[serde(default)]
    scope_key: String,
    /// `firing` or `resolved`.
    pub(crate) transition: String,
    severity: String,
    #[serde(default)]
    period: String,
    threshold: f64,
    value: f64,
    message: String,
    occurred_at: DateTime<Utc>,
}

/// The frames of one alert record: `alert.fired` or `alert.resolved`, and
/// for a budget's firing also `budget.crossed`. A daily digest is not an
/// alert anyone acts on: no frame.
pub(crate) fn from_alert(a: &AlertRecord) -> Vec<Frame> {
    if a.source == "digest" {
        return Vec::new();
    }
    let agent = a.scope_key.strip_prefix("agent=").map(str::to_owned);
    let frame = |kind: FrameType, data: Value| Frame {
        org_id: a.org_id.clone(),
        kind,
        agent_id: agent.clone(),
        text: envelope(kind, a.occurred_at, data),
    };
    let rule_id = (a.source == "rule")
        .then_some(a.source_id.as_deref())
        .flatten();
    let kind = match a.transition.as_str() {
        "firing" => FrameType::AlertFired,
        "resolved" => FrameType::AlertResolved,
        _ => return Vec::new(),
    };
    let mut out = vec![frame(
        kind,
        json!({
            "alert_id": a.alert_id, "source": a.source, "source_id": a.source_id,
            "rule_id": rule_id, "kind": a.kind, "scope": a.scope_key, "agent_id": agent,
            "severity": a.severity, "message": a.message, "period": a.period,
            "threshold": a.threshold, "value": a.value,
        }),
    )];
    if a.source == "budget" && kind == FrameType::AlertFired {
        out.push(frame(
            FrameType::BudgetCrossed,
            json!({
                "alert_id": a.alert_id, "budget_id": a.source_id, "kind": a.kind,
                "scope": a.scope_key, "agent_id": agent, "period": a.period,
                "threshold_usd": a.threshold, "spend_usd": a.value,
                "severity": a.severity, "message": a.message,
            }),
        ));
    }
    out
}

/// A control set on or lifted from an agent (`agent_controls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ControlChange {
    pub(crate) org_id: String,
    pub(crate) agent_id: String,
    /// `pause` or `kill`; for a resume, what was lifted.
    pub(crate) action: String,
    pub(crate) reason: Option<String>,
    pub(crate) set_by: String,
    pub(crate) resumed: bool,
    pub(crate) at: DateTime<Utc>,
}

pub(crate) fn from_control(c: &ControlChange) -> Frame {
    let kind = match (c.resumed, c.action.as_str()) {
        (true, _) => FrameType::AgentResumed,
        (false, "kill") => FrameType::AgentKilled,
        (false, _) => FrameType::AgentPaused,
    };
    let data = if c.resumed {
        json!({"agent_id": c.agent_id, "lifted": c.action, "set_by": c.set_by})
    } else {
        json!({"agent_id": c.agent_id, "action": c.action, "reason": c.reason, "set_by": c.set_by})
    };
    Frame {
        org_id: c.org_id.clone(),
        kind,
        agent_id: Some(c.agent_id.clone()),
        text: envelope(kind, c.at, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &Utf8Bytes) -> Value {
        serde_json::from_str(t.as_str()).unwrap()
    }

    #[test]
    fn a_failed_run_is_a_run_failed_frame() {
        let e = AgentEvent {
            event_id: "e1".into(),
            org_id: "o".into(),
            timestamp: 1_790_000_000_123_000,
            agent_id: "a1".into(),
            run_id: Some("r1".into()),
            event_type: "run_failed".into(),
            status: Some("error".into()),
            latency_ms: Some(900),
            error_type: Some("tool_error".into()),
            error_message: Some("boom".into()),
            ..Default::default()
        };
        let f = from_event(&e).unwrap();
        assert_eq!(
            (f.kind, f.agent_id.as_deref()),
            (FrameType::RunFailed, Some("a1"))
        );
        let v = parse(&f.text);
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "run.failed");
        assert_eq!(v["ts"], "2026-09-21T14:13:20.123Z");
        assert_eq!(v["data"]["run_id"], "r1");
        assert_eq!(v["data"]["error_message"], "boom");
        assert_eq!(v["data"]["latency_ms"], 900);
        assert!(v.get("org_id").is_none() && v["data"].get("org_id").is_none());
        for other in ["llm_call", "tool_call", "heartbeat", "cost_correction"] {
            let e = AgentEvent {
                event_type: other.into(),
                ..e.clone()
            };
            assert!(from_event(&e).is_none(), "{other}");
        }
    }

    fn alert(source: &str, transition: &str, scope: &str) -> AlertRecord {
        serde_json::from_value(json!({
            "alert_id": "al1", "org_id": "o", "source": source, "source_id": "b1",
            "kind": "budget_exceeded", "scope_key": scope, "transition": transition,
            "severity": "critical", "period": "2026-11-22", "threshold": 10.0, "value": 12.5,
            "message": "over", "details": {}, "channels": [],
            "occurred_at": "2026-11-22T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn alerts_and_budget_crossings() {
        let fired = from_alert(&alert("budget", "firing", "agent=a1"));
        let kinds: Vec<_> = fired.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FrameType::AlertFired, FrameType::BudgetCrossed]);
        assert!(fired.iter().all(|f| f.agent_id.as_deref() == Some("a1")));
        let b = parse(&fired[1].text);
        assert_eq!(b["data"]["budget_id"], "b1");
        assert_eq!(b["data"]["spend_usd"], 12.5);
        let resolved = from_alert(&alert("rule", "resolved", "org"));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].kind, FrameType::AlertResolved);
        assert_eq!(resolved[0].agent_id, None);
        assert_eq!(parse(&resolved[0].text)["data"]["rule_id"], "b1");
        assert!(from_alert(&alert("digest", "firing", "org")).is_empty());
    }

    #[test]
    fn controls() {
        let mut c = ControlChange {
            org_id: "o".into(),
            agent_id: "a1".into(),
            action: "kill".into(),
            reason: Some("runaway".into()),
            set_by: "key:k".into(),
            resumed: false,
            at: Utc::now(),
        };
        assert_eq!(from_control(&c).kind, FrameType::AgentKilled);
        c.action = "pause".into();
        assert_eq!(from_control(&c).kind, FrameType::AgentPaused);
        c.resumed = true;
        let f = from_control(&c);
        assert_eq!(f.kind, FrameType::AgentResumed);
        assert_eq!(parse(&f.text)["data"]["lifted"], "pause");
        assert_eq!(parse(&lost(7))["data"]["frames"], 7);
    }
}
