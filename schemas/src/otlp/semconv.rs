//! The OpenTelemetry GenAI semantic conventions this mapping reads: the
//! attribute names (with the aliases older instrumentations write), which of
//! them become event fields, and which operations are mapped.

use super::attrs::Attrs;

pub(super) const OPERATION: &str = "gen_ai.operation.name";
pub(super) const PROVIDER: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
pub(super) const MODEL: &[&str] = &["gen_ai.response.model", "gen_ai.request.model"];
pub(super) const AGENT: &[&str] = &["gen_ai.agent.id", "gen_ai.agent.name"];
pub(super) const INPUT: &[&str] = &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
pub(super) const OUTPUT: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];
pub(super) const CACHE_READ: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
];
pub(super) const CACHE_WRITE: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    // opentelemetry-util-genai (the OpenTelemetry Python GenAI helpers, 1.x)
    // writes this name for agent and inference invocations.
    "gen_ai.usage.cache_write.input_tokens",
];
pub(super) const REASONING: &[&str] = &[
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.output_tokens.reasoning",
];
pub(super) const TOOL: &str = "gen_ai.tool.name";
pub(super) const ERROR_TYPE: &str = "error.type";
/// Span attributes that become event fields, not event attributes.
pub(super) const AS_FIELDS: &[&[&str]] = &[
    PROVIDER,
    MODEL,
    INPUT,
    OUTPUT,
    CACHE_READ,
    CACHE_WRITE,
    REASONING,
    &[TOOL, ERROR_TYPE, "gen_ai.agent.id"],
];

/// Whether a span attribute becomes an event field, not an event attribute.
pub(super) fn is_field(key: &str) -> bool {
    AS_FIELDS.iter().any(|names| names.contains(&key))
}

/// What a mapped span is: a model call, a tool call or an agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Llm,
    Tool,
    Agent,
}

/// The operation a span is, if one this mapping takes.
pub(super) fn classify(a: &Attrs<'_>) -> Option<Op> {
    match a.text(OPERATION).as_deref() {
        Some("chat" | "text_completion" | "generate_content" | "embeddings") => Some(Op::Llm),
        Some("execute_tool") => Some(Op::Tool),
        Some("invoke_agent") => Some(Op::Agent),
        Some(_) => None,
        // Instrumentations older than gen_ai.operation.name: a model call.
        None if a.text_of(MODEL).is_some() => Some(Op::Llm),
        None => None,
    }
}
