//! The shape of a run: its steps (LLM and tool calls) and how a run fails.

use rand::Rng;

use crate::catalog::{pick, Role};

#[derive(Clone, Copy)]
pub(crate) enum Step {
    Llm {
        model: &'static str,
        provider: &'static str,
    },
    Tool(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout,
    RateLimit,
    ToolError,
    ContextLength,
}

impl Failure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::RateLimit => "rate_limit",
            Failure::ToolError => "tool_error",
            Failure::ContextLength => "context_length_exceeded",
        }
    }
}

pub(crate) fn plan_steps(rng: &mut impl Rng, role: &'static Role) -> Vec<Step> {
    let n_llm = pick(
        rng,
        &[(1usize, 15u32), (2, 25), (3, 25), (4, 15), (5, 12), (6, 8)],
    );
    let mut steps = Vec::with_capacity(n_llm * 2);
    for i in 0..n_llm {
        let (model, provider) = {
            let choices: Vec<((&str, &str), u32)> =
                role.models.iter().map(|(m, p, w)| ((*m, *p), *w)).collect();
            pick(rng, &choices)
        };
        steps.push(Step::Llm { model, provider });
        if i + 1 < n_llm && rng.random_bool(0.6) {
            steps.push(Step::Tool(
                role.tools[rng.random_range(0..role.tools.len())],
            ));
        }
    }
    steps
}

pub(crate) fn pick_failure(rng: &mut impl Rng, incident: bool) -> Failure {
    if incident && rng.random_bool(0.8) {
        return Failure::RateLimit;
    }
    pick(
        rng,
        &[
            (Failure::Timeout, 3),
            (Failure::RateLimit, 3),
            (Failure::ToolError, 3),
            (Failure::ContextLength, 1),
        ],
    )
}

/// Index of the step that fails (adds a tool step when a tool error needs one).
pub(crate) fn failing_step(rng: &mut impl Rng, steps: &mut Vec<Step>, f: Failure) -> usize {
    let want_tool = f == Failure::ToolError;
    let candidates: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| match f {
            Failure::Timeout => true,
            _ => matches!(s, Step::Tool(_)) == want_tool,
        })
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        steps.push(Step::Tool(
            ["http_get", "sql_query", "code_exec"][rng.random_range(0..3)],
        ));
        return steps.len() - 1;
    }
    candidates[rng.random_range(0..candidates.len())]
}

pub(crate) fn context_limit(step: &Step) -> Option<i64> {
    match step {
        Step::Llm { model, .. } if model.starts_with("claude") => Some(200_000),
        Step::Llm { model, .. } if model.starts_with("gemini") || model.starts_with("gpt-4.1") => {
            Some(1_048_576)
        }
        Step::Llm { model, .. } if model.starts_with("llama") => Some(131_072),
        Step::Llm { .. } => Some(128_000),
        Step::Tool(_) => None,
    }
}

pub(crate) fn error_message(rng: &mut impl Rng, f: Failure, step: &Step) -> String {
    match (f, step) {
        (Failure::Timeout, Step::Llm { model, .. }) => {
            format!("{model} call exceeded the 30s deadline")
        }
        (Failure::Timeout, Step::Tool(t)) => format!("tool {t} did not answer within 30s"),
        (Failure::RateLimit, Step::Llm { provider, .. }) => {
            format!("{provider}: 429 Too Many Requests (tokens per minute limit reached)")
        }
        (Failure::ContextLength, Step::Llm { model, .. }) => {
            format!(
                "prompt exceeds the {model} context window ({} tokens)",
                context_limit(step).unwrap_or(0)
            )
        }
        (_, Step::Tool(t)) => {
            let msg = match *t {
                "sql_query" => "relation \"orders_2024\" does not exist",
                "http_get" => [
                    "upstream returned 502 Bad Gateway",
                    "connection reset by peer",
                ][rng.random_range(0..2)],
                "code_exec" => "process exited with status 1: ZeroDivisionError: division by zero",
                _ => "search index unavailable (503)",
            };
            format!("{t}: {msg}")
        }
        (_, Step::Llm { model, .. }) => format!("{model}: request failed"),
    }
}
