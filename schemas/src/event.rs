//! Rust mirror of `avro/agent_event.v2.avsc` (v1 plus the hierarchy fields).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One agent event, as carried on Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentEvent {
    pub event_id: String,
    pub org_id: String,
    /// Event time, microseconds since the Unix epoch (UTC).
    pub timestamp: i64,
    pub agent_id: String,
    pub workflow_id: Option<String>,
    pub run_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub status: Option<String>,
    pub latency_ms: Option<i64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub tool_name: Option<String>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub attributes: HashMap<String, String>,
    pub ingested_at: Option<i64>,
    /// v2: the project the work was for (a coding agent's repository).
    pub project_id: Option<String>,
    /// v2: the machine the agent ran on.
    pub machine_id: Option<String>,
    /// v2: the checkout / working directory within the project.
    pub workspace_id: Option<String>,
    /// v2: the agent session (subagent work carries its parent's).
    pub session_id: Option<String>,
}

/// The event types v1 knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    RunStarted,
    RunCompleted,
    RunFailed,
    LlmCall,
    ToolCall,
    Heartbeat,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::RunStarted,
        EventType::RunCompleted,
        EventType::RunFailed,
        EventType::LlmCall,
        EventType::ToolCall,
        EventType::Heartbeat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RunStarted => "run_started",
            EventType::RunCompleted => "run_completed",
            EventType::RunFailed => "run_failed",
            EventType::LlmCall => "llm_call",
            EventType::ToolCall => "tool_call",
            EventType::Heartbeat => "heartbeat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Run lifecycle events must name their run.
    pub fn needs_run_id(self) -> bool {
        matches!(
            self,
            EventType::RunStarted | EventType::RunCompleted | EventType::RunFailed
        )
    }
}

impl AgentEvent {
    /// Whether any v2 hierarchy field is set (such an event needs the v2
    /// writer schema; others are written as v1, byte for byte as before).
    pub fn has_hierarchy(&self) -> bool {
        self.project_id.is_some()
            || self.machine_id.is_some()
            || self.workspace_id.is_some()
            || self.session_id.is_some()
    }

    pub fn kind(&self) -> Option<EventType> {
        EventType::parse(&self.event_type)
    }

    /// An error worth counting: a failed run, or any event whose status says it failed.
    pub fn is_error(&self) -> bool {
        self.event_type == EventType::RunFailed.as_str()
            || matches!(self.status.as_deref(), Some("error") | Some("failed"))
    }

    /// Kafka key: keeps one agent's events in order on one partition.
    pub fn partition_key(&self) -> String {
        format!("{}/{}", self.org_id, self.agent_id)
    }
}
