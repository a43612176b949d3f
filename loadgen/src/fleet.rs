//! The synthetic fleet: named agents in a few workflows, and the events of
//! their runs as the JSON `POST /v1/events` accepts.
//!
//! A run is `run_started`, 1–6 `llm_call`s with tool calls in between, then
//! `run_completed` or (about 8% of runs) `run_failed`. Run latency is
//! log-normal (median ~3 s, p99 ~30 s), split over the steps.

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::catalog::{lognormal, Role, REGIONS, ROLES};
use crate::steps::{
    context_limit, error_message, failing_step, pick_failure, plan_steps, Failure, Step,
};

struct Agent {
    id: String,
    role: &'static Role,
    env: &'static str,
    region: &'static str,
}

/// A fleet of named agents.
pub struct Fleet {
    agents: Vec<Agent>,
    /// Share of runs that fail (0.08 by default).
    pub fail_rate: f64,
}

/// A timestamped event: (microseconds since the epoch, gateway JSON).
pub type Timed = (i64, Value);

impl Fleet {
    pub fn new(n_agents: usize, rng: &mut impl Rng) -> Self {
        let agents = (0..n_agents.max(1))
            .map(|i| {
                let role = &ROLES[i % ROLES.len()];
                Agent {
                    id: format!("{}-{}", role.name, i / ROLES.len() + 1),
                    role,
                    env: if rng.random_bool(0.2) {
                        "staging"
                    } else {
                        "prod"
                    },
                    region: REGIONS[rng.random_range(0..REGIONS.len())],
                }
            })
            .collect();
        Self {
            agents,
            fail_rate: 0.08,
        }
    }

    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// Average events per run, estimated by sampling (used to pace run starts).
    pub fn mean_events_per_run(&self, rng: &mut impl Rng) -> f64 {
        let n = 2000;
        let total: usize = (0..n).map(|_| self.random_run(rng, 0, false).len()).sum();
        total as f64 / n as f64
    }

    /// The events of one run of a random agent, starting at `start_us`.
    /// `incident`: an upstream rate-limit storm (many more failed runs).
    pub fn random_run(&self, rng: &mut impl Rng, start_us: i64, incident: bool) -> Vec<Timed> {
        let agent = rng.random_range(0..self.agents.len());
        self.run(rng, agent, start_us, incident)
    }

    pub fn heartbeat(&self, rng: &mut impl Rng, agent: usize, ts_us: i64) -> Value {
        let a = &self.agents[agent % self.agents.len()];
        let mut e = base(rng, a, "heartbeat", ts_us);
        e.insert("status".into(), json!("ok"));
        e.insert("latency_ms".into(), json!(rng.random_range(1..40)));
        Value::Object(e)
    }

    fn run(&self, rng: &mut impl Rng, agent: usize, start_us: i64, incident: bool) -> Vec<Timed> {
        let a = &self.agents[agent];
        let run_id = format!(
            "run-{}",
            uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .simple()
        );
        let mut steps = plan_steps(rng, a.role);
        let fail_rate = if incident { 0.35 } else { self.fail_rate };
        let failure = rng
            .random_bool(fail_rate)
            .then(|| pick_failure(rng, incident));
        let fail_at = failure.map(|f| failing_step(rng, &mut steps, f));
        if let Some(k) = fail_at {
            steps.truncate(k + 1);
        }
        let total_ms = lognormal(rng, 3000.0, 1.0).clamp(150.0, 120_000.0);
        let weights: Vec<f64> = steps
            .iter()
            .map(|s| match s {
                Step::Llm { .. } => rng.random_range(1.0..3.0),
                Step::Tool(_) => rng.random_range(0.2..1.2),
            })
            .collect();
        let sum: f64 = weights.iter().sum();

        let mut out = Vec::with_capacity(steps.len() + 2);
        let mut started = base(rng, a, "run_started", start_us);
        started.insert("run_id".into(), json!(run_id));
        out.push((start_us, Value::Object(started)));
        let mut t_ms = 0i64;
        let mut first_llm = true;
        for (i, step) in steps.iter().enumerate() {
            let failing = fail_at == Some(i);
            let mut latency = (total_ms * weights[i] / sum).max(5.0) as i64;
            match (failing, failure) {
                (true, Some(Failure::Timeout)) => latency = 30_000 + rng.random_range(0..200),
                (true, Some(Failure::RateLimit)) => latency = rng.random_range(40..400),
                (true, Some(Failure::ContextLength)) => latency = rng.random_range(20..200),
                _ => {}
            }
            t_ms += latency;
            let ts = start_us + t_ms * 1000;
            let mut e = match *step {
                Step::Llm { model, provider } => {
                    let e = llm_call(rng, a, ts, model, provider, i, first_llm);
                    first_llm = false;
                    e
                }
                Step::Tool(tool) => {
                    let mut e = base(rng, a, "tool_call", ts);
                    e.insert("tool_name".into(), json!(tool));
                    e
                }
            };
            e.insert("run_id".into(), json!(run_id));
            e.insert("latency_ms".into(), json!(latency));
            match (failing, failure) {
                (true, Some(f)) => {
                    let msg = error_message(rng, f, step);
                    if f == Failure::ContextLength {
                        if let Some(limit) = context_limit(step) {
                            e.insert(
                                "input_tokens".into(),
                                json!(limit + rng.random_range(1..20_000)),
                            );
                            e.insert("output_tokens".into(), json!(0));
                        }
                        e.remove("cache_read_tokens");
                        e.remove("reasoning_tokens");
                    }
                    e.insert("status".into(), json!("error"));
                    e.insert("error_type".into(), json!(f.as_str()));
                    e.insert("error_message".into(), json!(msg));
                }
                _ => {
                    e.insert("status".into(), json!("ok"));
                }
            }
            out.push((ts, Value::Object(e)));
        }
        t_ms += rng.random_range(2..30);
        let end_us = start_us + t_ms * 1000;
        let kind = if failure.is_some() {
            "run_failed"
        } else {
            "run_completed"
        };
        let mut end = base(rng, a, kind, end_us);
        end.insert("run_id".into(), json!(run_id));
        end.insert("latency_ms".into(), json!(t_ms));
        if let (Some(f), Some(k)) = (failure, fail_at) {
            end.insert("status".into(), json!("error"));
            end.insert("error_type".into(), json!(f.as_str()));
            end.insert(
                "error_message".into(),
                json!(error_message(rng, f, &steps[k])),
            );
        } else {
            end.insert("status".into(), json!("ok"));
        }
        out.push((end_us, Value::Object(end)));
        out
    }
}

fn base(rng: &mut impl Rng, a: &Agent, kind: &str, ts_us: i64) -> Map<String, Value> {
    let ts = chrono::DateTime::from_timestamp_micros(ts_us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut m = Map::new();
    m.insert(
        "event_id".into(),
        json!(uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string()),
    );
    m.insert("type".into(), json!(kind));
    m.insert("agent_id".into(), json!(a.id));
    m.insert("timestamp".into(), json!(ts));
    m.insert("workflow_id".into(), json!(a.role.workflow));
    m.insert(
        "attributes".into(),
        json!({"env": a.env, "team": a.role.team, "region": a.region, "agent_version": "1.4.2"}),
    );
    m
}

fn llm_call(
    rng: &mut impl Rng,
    a: &Agent,
    ts: i64,
    model: &str,
    provider: &str,
    step: usize,
    first: bool,
) -> Map<String, Value> {
    let mut e = base(rng, a, "llm_call", ts);
    let input = (lognormal(rng, a.role.input_median, 0.5) * (1.0 + 0.35 * step as f64)) as i64;
    let output = lognormal(rng, a.role.output_median, 0.6) as i64;
    e.insert("provider".into(), json!(provider));
    e.insert("model".into(), json!(model));
    e.insert("input_tokens".into(), json!(input.max(20)));
    e.insert("output_tokens".into(), json!(output.max(1)));
    let caches = matches!(provider, "openai" | "anthropic" | "google");
    if caches && !first && rng.random_bool(0.6) {
        e.insert(
            "cache_read_tokens".into(),
            json!((input as f64 * rng.random_range(0.3..0.8)) as i64),
        );
    }
    if provider == "anthropic" && first && rng.random_bool(0.4) {
        e.insert("cache_write_tokens".into(), json!(input / 2));
    }
    match model {
        "o3" => {
            e.insert(
                "reasoning_tokens".into(),
                json!(lognormal(rng, 1500.0, 0.7) as i64),
            );
        }
        "gemini-2.5-pro" => {
            e.insert(
                "reasoning_tokens".into(),
                json!(lognormal(rng, 600.0, 0.7) as i64),
            );
        }
        _ => {}
    }
    // The sales team reports its own (negotiated) cost: exercises client-side cost.
    if a.role.team == "growth" {
        let (pin, pout) = if model == "gpt-4o-mini" {
            (0.15, 0.60)
        } else {
            (0.80, 4.00)
        };
        let cost = 0.8 * (input as f64 * pin + output as f64 * pout) / 1e6;
        e.insert("cost_usd".into(), json!((cost * 1e8).round() / 1e8));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentops_schemas::validate::{event_from_json, ValidationLimits};
    use rand::SeedableRng;

    #[test]
    fn every_generated_event_validates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let fleet = Fleet::new(24, &mut rng);
        let now = chrono::Utc::now().timestamp_micros();
        let (mut runs, mut failed) = (0, 0);
        for _ in 0..2000 {
            let events = fleet.random_run(&mut rng, now - 600_000_000, false);
            runs += 1;
            for (ts, v) in &events {
                let e = event_from_json(v, "org", now, &ValidationLimits::default()).unwrap();
                assert_eq!(e.timestamp, *ts);
            }
            let last = &events.last().unwrap().1;
            if last["type"] == "run_failed" {
                failed += 1;
                assert!(last["error_type"].is_string());
            }
        }
        let share = failed as f64 / runs as f64;
        let error_types: std::collections::BTreeSet<String> = (0..400)
            .flat_map(|_| fleet.random_run(&mut rng, now, false))
            .filter_map(|(_, v)| v["error_type"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(error_types.len(), 4, "{error_types:?}");
        assert!((0.05..0.11).contains(&share), "{share}");
        // The run latency (on run_* end events) has a median near 3 s.
        let mut lat: Vec<i64> = (0..1000)
            .filter_map(|_| {
                fleet
                    .random_run(&mut rng, now, false)
                    .last()
                    .and_then(|(_, v)| v["latency_ms"].as_i64())
            })
            .collect();
        lat.sort_unstable();
        assert!((2000..4500).contains(&lat[500]), "median {}", lat[500]);
        let calls: Vec<Value> = (0..500)
            .flat_map(|_| fleet.random_run(&mut rng, now, false))
            .map(|(_, v)| v)
            .collect();
        assert!(calls.iter().any(|v| v["model"] == "llama-3.1-70b-local"));
        assert!(calls
            .iter()
            .filter(|v| v["model"] == "o3")
            .all(|v| v["reasoning_tokens"].is_i64() || v["status"] == "error"));
        assert!(calls.iter().any(|v| v["cache_read_tokens"].is_i64()));
        assert!(calls.iter().any(|v| v["tool_name"] == "sql_query"));
        let hb = fleet.heartbeat(&mut rng, 3, now);
        assert!(event_from_json(&hb, "org", now, &ValidationLimits::default()).is_ok());
    }
}
