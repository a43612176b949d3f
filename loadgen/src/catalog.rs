//! The fleet's catalogue: agent roles, their workflows, models and tools;
//! and the small random helpers the generator uses.

use rand::Rng;

pub(crate) struct Role {
    pub(crate) name: &'static str,
    pub(crate) workflow: &'static str,
    pub(crate) team: &'static str,
    /// (model, provider, weight)
    pub(crate) models: &'static [(&'static str, &'static str, u32)],
    pub(crate) tools: &'static [&'static str],
    /// Median prompt of a run's first call, tokens.
    pub(crate) input_median: f64,
    pub(crate) output_median: f64,
}

pub(crate) const ROLES: &[Role] = &[
    Role {
        name: "support-triage",
        workflow: "customer-support",
        team: "support",
        models: &[
            ("gpt-4o-mini", "openai", 6),
            ("claude-3-5-haiku", "anthropic", 3),
            ("gpt-4o", "openai", 1),
        ],
        tools: &["search", "http_get"],
        input_median: 1200.0,
        output_median: 180.0,
    },
    Role {
        name: "code-reviewer",
        workflow: "code-review",
        team: "platform",
        models: &[
            ("claude-sonnet-4", "anthropic", 6),
            ("gpt-4.1", "openai", 3),
            ("o3", "openai", 1),
        ],
        tools: &["code_exec", "http_get", "search"],
        input_median: 4500.0,
        output_median: 450.0,
    },
    Role {
        name: "research-assistant",
        workflow: "research",
        team: "research",
        models: &[
            ("gemini-2.5-pro", "google", 4),
            ("gemini-2.5-flash", "google", 4),
            ("o3", "openai", 2),
        ],
        tools: &["search", "http_get"],
        input_median: 6000.0,
        output_median: 600.0,
    },
    Role {
        name: "data-analyst",
        workflow: "analytics",
        team: "data",
        models: &[
            ("gpt-4.1", "openai", 4),
            ("gemini-2.5-flash", "google", 3),
            ("llama-3.1-70b-local", "vllm", 3),
        ],
        tools: &["sql_query", "code_exec"],
        input_median: 2500.0,
        output_median: 350.0,
    },
    Role {
        name: "sales-outreach",
        workflow: "sales",
        team: "growth",
        models: &[
            ("gpt-4o-mini", "openai", 5),
            ("claude-3-5-haiku", "anthropic", 5),
        ],
        tools: &["search", "http_get"],
        input_median: 900.0,
        output_median: 300.0,
    },
    Role {
        name: "incident-responder",
        workflow: "ops",
        team: "sre",
        models: &[("claude-sonnet-4", "anthropic", 5), ("gpt-4o", "openai", 5)],
        tools: &["sql_query", "http_get", "code_exec"],
        input_median: 3000.0,
        output_median: 300.0,
    },
];

pub(crate) const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-southeast-2"];

/// Weighted choice.
pub(crate) fn pick<T: Copy>(rng: &mut impl Rng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (v, w) in choices {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    choices[0].0
}

/// Log-normal sample with the given median (Box–Muller normal).
pub(crate) fn lognormal(rng: &mut impl Rng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}
