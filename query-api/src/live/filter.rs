//! Frame types and a client's subscription filter: `agent_id` and `types`,
//! from the query string or a `{"subscribe": {...}}` message. A bad filter
//! names its field (the socket closes with 4400 and that reason).

use std::collections::HashSet;

use serde_json::Value;

/// The `type` of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FrameType {
    RunStarted,
    RunCompleted,
    RunFailed,
    BudgetCrossed,
    AlertFired,
    AlertResolved,
    AgentPaused,
    AgentKilled,
    AgentResumed,
    /// Frames this client lost (never filtered out).
    Lost,
}

impl FrameType {
    /// The types a client may subscribe to (`lost` always comes).
    pub(crate) const SUBSCRIBABLE: [FrameType; 9] = [
        FrameType::RunStarted,
        FrameType::RunCompleted,
        FrameType::RunFailed,
        FrameType::BudgetCrossed,
        FrameType::AlertFired,
        FrameType::AlertResolved,
        FrameType::AgentPaused,
        FrameType::AgentKilled,
        FrameType::AgentResumed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FrameType::RunStarted => "run.started",
            FrameType::RunCompleted => "run.completed",
            FrameType::RunFailed => "run.failed",
            FrameType::BudgetCrossed => "budget.crossed",
            FrameType::AlertFired => "alert.fired",
            FrameType::AlertResolved => "alert.resolved",
            FrameType::AgentPaused => "agent.paused",
            FrameType::AgentKilled => "agent.killed",
            FrameType::AgentResumed => "agent.resumed",
            FrameType::Lost => "lost",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::SUBSCRIBABLE.into_iter().find(|t| t.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Most agent ids one filter may name.
pub(crate) const MAX_AGENTS: usize = 100;

/// A filter refused: the field and why (short: a close reason holds at most
/// 123 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadFilter {
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

impl std::fmt::Display for BadFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> BadFilter {
    BadFilter {
        field,
        message: message.into(),
    }
}

/// Which frames a client gets. Empty sets: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Only frames about these agents (frames about no agent, such as an
    /// org-wide alert, then do not come).
    agents: Option<HashSet<String>>,
    /// Bit set of [`FrameType`]s; `None`: all.
    types: Option<u16>,
}

impl Filter {
    /// Whether a frame of `kind` about `agent` passes.
    pub(crate) fn admits(&self, kind: FrameType, agent: Option<&str>) -> bool {
        if kind == FrameType::Lost {
            return true;
        }
        if self.types.is_some_and(|bits| bits & kind.bit() == 0) {
            return false;
        }
        match (&self.agents, agent) {
            (None, _) => true,
            (Some(set), Some(a)) => set.contains(a),
            (Some(_), None) => false,
        }
    }

    /// From the query string's `agent_id` and `types` (comma lists; absent:
    /// all). Any other parameter is refused.
    pub(crate) fn from_query(query: Option<&str>) -> Result<Filter, BadFilter> {
        let mut agents: Option<Vec<String>> = None;
        let mut types: Option<Vec<String>> = None;
        for (k, v) in form_pairs(query.unwrap_or_default()) {
            let list = || v.split(',').map(str::to_owned).collect::<Vec<_>>();
            let slot = match k.as_str() {
                "agent_id" => &mut agents,
                "types" => &mut types,
                _ => return Err(bad("query", format!("unknown parameter `{}`", clip(&k)))),
            };
            if slot.is_some() {
                let field = if k == "types" { "types" } else { "agent_id" };
                return Err(bad(field, "given twice; use one comma list"));
            }
            *slot = Some(list());
        }
        Filter::build(agents, types)
    }

    /// From a client's text message `{"subscribe": {"agent_id": [..],
    /// "types": [..]}}` (each optional).
    pub(crate) fn from_message(text: &str) -> Result<Filter, BadFilter> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| bad("subscribe", "not JSON; send {\"subscribe\":{...}}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("subscribe", "not an object"))?;
        if let Some(k) = obj.keys().find(|k| *k != "subscribe") {
            return Err(bad("subscribe", format!("unknown field `{}`", clip(k))));
        }
        let sub = obj
            .get("subscribe")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("subscribe", "required: an object"))?;
        if let Some(k) = sub.keys().find(|k| *k != "agent_id" && *k != "types") {
            return Err(bad("subscribe", format!("unknown field `{}`", clip(k))));
        }
        let list = |field: &'static str| -> Result<Option<Vec<String>>, BadFilter> {
            match sub.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(field, "must be a list of strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(bad(field, "must be a list of strings")),
            }
        };
        Filter::build(list("agent_id")?, list("types")?)
    }

    fn build(agents: Option<Vec<String>>, types: Option<Vec<String>>) -> Result<Filter, BadFilter> {
        let agents = match agents {
            None => None,
            Some(list) => {
                if list.len() > MAX_AGENTS {
                    return Err(bad("agent_id", format!("at most {MAX_AGENTS} agents")));
                }
                for a in &list {
                    if a.is_empty()
                        || a.len() > crate::params::MAX_IDENTIFIER
                        || a.chars().any(char::is_control)
                    {
                        return Err(bad(
                            "agent_id",
                            "each 1 to 256 bytes, no control characters",
                        ));
                    }
                }
                Some(list.into_iter().collect())
            }
        };
        let types = match types {
            None => None,
            Some(list) => {
                let mut bits = 0u16;
                for t in &list {
                    let kind = FrameType::parse(t).ok_or_else(|| {
                        bad(
                            "types",
                            format!("`{}` is not a frame type (run.*, budget.crossed, alert.*, agent.*)", clip(t)),
                        )
                    })?;
                    bits |= kind.bit();
                }
                if bits == 0 {
                    return Err(bad("types", "empty"));
                }
                Some(bits)
            }
        };
        Ok(Filter { agents, types })
    }
}

/// At most 24 characters of user input in a reason.
fn clip(s: &str) -> String {
    s.chars().take(24).collect()
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .zip(bytes.get(i + 2))
            .and_then(|(h, l)| Some(hex(*h)? << 4 | hex(*l)?));
        match (bytes[i], pair) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use FrameType::*;

    #[test]
    fn no_filter_admits_everything() {
        let f = Filter::from_query(None).unwrap();
        for t in FrameType::SUBSCRIBABLE {
            assert!(f.admits(t, Some("a")) && f.admits(t, None));
        }
        assert_eq!(Filter::from_query(Some("")).unwrap(), f);
    }

    #[test]
    fn query_filters_by_agent_and_type() {
        let f = Filter::from_query(Some("agent_id=a1,a%202&types=run.failed,alert.fired")).unwrap();
        assert!(f.admits(RunFailed, Some("a1")));
        assert!(f.admits(RunFailed, Some("a 2")));
        assert!(!f.admits(RunFailed, Some("a3")));
        assert!(!f.admits(RunStarted, Some("a1")));
        // An org-wide alert names no agent: filtered out by an agent filter.
        assert!(!f.admits(AlertFired, None));
        // `lost` always comes.
        assert!(f.admits(Lost, None));
        let types_only = Filter::from_query(Some("types=agent.paused")).unwrap();
        assert!(types_only.admits(AgentPaused, Some("x")) && !types_only.admits(AgentKilled, None));
    }

    #[test]
    fn bad_query_filters_name_their_field() {
        for (q, field) in [
            ("types=run.exploded", "types"),
            ("types=lost", "types"),
            ("types=", "types"),
            ("agent_id=", "agent_id"),
            ("agent_id=a,,b", "agent_id"),
            ("agent_id=a%00b", "agent_id"),
            ("agent_id=a&agent_id=b", "agent_id"),
            ("agent=a", "query"),
        ] {
            let e = Filter::from_query(Some(q)).unwrap_err();
            assert_eq!(e.field, field, "{q}: {e}");
            assert!(e.to_string().len() <= 123, "{e}");
        }
        let many: Vec<String> = (0..=MAX_AGENTS).map(|i| format!("a{i}")).collect();
        let e = Filter::from_query(Some(&format!("agent_id={}", many.join(",")))).unwrap_err();
        assert_eq!(e.field, "agent_id");
    }

    #[test]
    fn a_subscribe_message_replaces_the_filter() {
        let f = Filter::from_message(r#"{"subscribe":{"agent_id":["a1"],"types":["run.failed"]}}"#)
            .unwrap();
        assert!(f.admits(RunFailed, Some("a1")) && !f.admits(RunStarted, Some("a1")));
        let all = Filter::from_message(r#"{"subscribe":{}}"#).unwrap();
        assert_eq!(all, Filter::default());
        let nulls =
            Filter::from_message(r#"{"subscribe":{"agent_id":null,"types":null}}"#).unwrap();
        assert_eq!(nulls, Filter::default());
    }

    #[test]
    fn bad_subscribe_messages_name_their_field() {
        for (m, field) in [
            ("hello", "subscribe"),
            ("[]", "subscribe"),
            (r#"{"unsubscribe":{}}"#, "subscribe"),
            (r#"{"subscribe":[]}"#, "subscribe"),
            (r#"{"subscribe":{"agents":["a"]}}"#, "subscribe"),
            (r#"{"subscribe":{"agent_id":"a"}}"#, "agent_id"),
            (r#"{"subscribe":{"agent_id":[1]}}"#, "agent_id"),
            (r#"{"subscribe":{"types":["nope"]}}"#, "types"),
            (r#"{"subscribe":{"types":[]}}"#, "types"),
        ] {
            let e = Filter::from_message(m).unwrap_err();
            assert_eq!(e.field, field, "{m}: {e}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decode("a%2Cb+c%zz%4"), "a,b c%zz%4");
    }
}
