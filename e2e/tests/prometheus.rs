//! Prometheus provisioning (issue 16, item 6), with Debian's `prometheus`
//! and `promtool` (deploy/local/test.sh installs them; `AGENTOPS_PROMETHEUS`
//! / `AGENTOPS_PROMTOOL` point elsewhere):
//!
//! - `promtool` checks `deploy/prometheus/prometheus.yml` and its rules, and
//!   runs the rules' unit tests (`rules/agentops.rules.test.yml`: each alert
//!   fires, and does not, on series made for it);
//! - a real Prometheus, loaded with those rules, scrapes a running stack:
//!   every target is up, every rule evaluates without error, every metric a
//!   rule reads is exposed by some component, and a budget past its limit
//!   raises `AgentOpsBudgetExceeded` for its org.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentops_e2e::{free_port, kafka_brokers, Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use chrono::Utc;
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tool(var: &str, name: &str) -> Result<PathBuf> {
    let p = std::env::var(var).map_or_else(|_| PathBuf::from("/usr/bin").join(name), PathBuf::from);
    ensure!(
        p.exists(),
        "no {name} at {}: run the suite through deploy/local/test.sh (Debian's prometheus package) or set {var}",
        p.display()
    );
    Ok(p)
}

fn promtool(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(tool("AGENTOPS_PROMTOOL", "promtool")?)
        .args(args)
        .current_dir(repo())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "promtool {args:?}: {}\n{text}",
        out.status
    );
    Ok(text)
}

#[test]
fn config_and_rules_check_and_their_unit_tests_pass() -> Result<()> {
    let config = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"])?;
    ensure!(config.contains("rules found"), "{config}");
    promtool(&[
        "check",
        "rules",
        "deploy/prometheus/rules/agentops.rules.yml",
    ])?;
    let tests = promtool(&[
        "test",
        "rules",
        "deploy/prometheus/rules/agentops.rules.test.yml",
    ])?;
    ensure!(tests.contains("SUCCESS"), "{tests}");
    Ok(())
}

/// The metric names the rules read (not the recording rules' own names).
fn names_in_rules() -> Result<Vec<String>> {
    let text = std::fs::read_to_string(repo().join("deploy/prometheus/rules/agentops.rules.yml"))?;
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(i) = rest.find("agentops_") {
            let after = &rest[i..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            // `agentops:consumer_lag:sum` is a recorded name, not exported.
            let prefixed = i > 0 && rest.as_bytes()[i - 1] == b':';
            if !prefixed {
                names.push(after[..end].to_owned());
            }
            rest = &after[end..];
        }
    }
    names.sort();
    names.dedup();
    ensure!(names.len() >= 5, "{names:?}");
    Ok(names)
}

struct Prometheus {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Prometheus scraping `stack` every second with the repository's rules.
    async fn start(stack: &Stack, dir: &Path) -> Result<Prometheus> {
        let rules = repo().join("deploy/prometheus/rules/agentops.rules.yml");
        let mut jobs = String::new();
        for (c, job) in [
            (Component::Gateway, "agentops-ingest-gateway"),
            (Component::Processors, "agentops-processors"),
            (Component::Projections, "agentops-projections"),
            (Component::QueryApi, "agentops-query-api"),
        ] {
            let target = stack
                .metrics_url(c, 0)
                .trim_start_matches("http://")
                .trim_end_matches("/metrics")
                .to_owned();
            jobs.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ));
        }
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\nscrape_configs:\n{jobs}",
            rules.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config)?;
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log"))?;
        let child = std::process::Command::new(tool("AGENTOPS_PROMETHEUS", "prometheus")?)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        stack
            .eventually(Duration::from_secs(60), "prometheus ready", || async {
                let r = p.http.get(format!("{}/-/ready", p.url)).send().await;
                Ok(r.ok().filter(|r| r.status().is_success()).map(|_| ()))
            })
            .await?;
        Ok(p)
    }

    async fn api(&self, path: &str) -> Result<Value> {
        let v: Value = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .send()
            .await?
            .json()
            .await?;
        ensure!(v["status"] == "success", "{path}: {v}");
        Ok(v["data"].clone())
    }

    async fn query(&self, q: &str) -> Result<Vec<Value>> {
        let q = urlencode(q);
        let d = self.api(&format!("query?query={q}")).await?;
        Ok(d["result"].as_array().cloned().unwrap_or_default())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn admin_post(stack: &Stack, path: &str, body: Value) -> Result<()> {
    let r = stack
        .http
        .post(format!("{}{path}", stack.query_url))
        .bearer_auth(&stack.admin_key)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    ensure!(status.is_success(), "{path}: {status} {}", r.text().await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_stack_and_evaluates_the_rules() -> Result<()> {
    let stack = Stack::start(
        "prometheus",
        StackOptions {
            env: vec![("AGENTOPS_BUSINESS_METRICS_INTERVAL_SECS".into(), "1".into())],
            ..Default::default()
        },
    )
    .await?;
    let dir = std::env::temp_dir().join(format!("agentops-prometheus-{}", stack.name));
    std::fs::create_dir_all(&dir)?;
    let prom = Prometheus::start(&stack, &dir).await?;

    // Traffic that makes every series a rule reads exist: priced and
    // unpriced calls, a budget past its limit, a record only fit for the
    // dead-letter topic.
    let now = Utc::now().to_rfc3339();
    let batch: Vec<Value> = ["gpt-4o", "gpt-4o", "prom-unknown-model"]
        .iter()
        .map(|m| {
            json!({"event_id": agentops_e2e::events::id(), "type": "llm_call",
                   "agent_id": "prom-agent", "timestamp": now, "provider": "openai",
                   "model": m, "input_tokens": 100_000, "output_tokens": 1000})
        })
        .collect();
    let (status, body) = stack.post_events(&json!({ "events": batch })).await?;
    ensure!(status == 202, "{status} {body}");
    admin_post(
        &stack,
        "/v1/admin/budgets",
        json!({"name": "prom-day", "period": "day", "limit_usd": 0.1, "scope_kind": "org"}),
    )
    .await?;
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .create()?;
        let key = format!("{}/prom-agent", stack.org_id);
        p.send(
            FutureRecord::to(&stack.topic("raw"))
                .key(&key)
                .payload(&b"\x00\x01 not avro"[..]),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
    }

    // Every target up.
    stack
        .eventually(Duration::from_secs(60), "every target up", || async {
            let t = prom.api("targets").await?;
            let active = t["activeTargets"].as_array().cloned().unwrap_or_default();
            Ok((active.len() == 4 && active.iter().all(|t| t["health"] == "up")).then_some(()))
        })
        .await?;

    // Every metric the rules read is exposed (scraped) by some component.
    for name in names_in_rules()? {
        let what = format!("{name} scraped");
        stack
            .eventually(Duration::from_secs(60), &what, || async {
                let r = prom
                    .query(&format!("count({{__name__=\"{name}\"}})"))
                    .await?;
                Ok((!r.is_empty()).then_some(()))
            })
            .await?;
    }

    // A budget past its limit (two gpt-4o calls of $0.26 against $0.10):
    // the org's alert is pending (`for: 1m`), then firing.
    let org = stack.org_id.clone();
    stack
        .eventually(
            Duration::from_secs(60),
            "AgentOpsBudgetExceeded",
            || async {
                let a = prom.api("alerts").await?;
                let alerts = a["alerts"].as_array().cloned().unwrap_or_default();
                Ok(alerts
                    .iter()
                    .any(|a| {
                        a["labels"]["alertname"] == "AgentOpsBudgetExceeded"
                            && a["labels"]["org"] == json!(org)
                            && a["labels"]["budget"] == "prom-day"
                    })
                    .then_some(()))
            },
        )
        .await?;

    // Every rule evaluated without error on the real series.
    let rules = prom.api("rules").await?;
    let mut seen = 0;
    for g in rules["groups"].as_array().context("groups")? {
        for r in g["rules"].as_array().context("rules")? {
            seen += 1;
            ensure!(r["health"] == "ok", "rule {} unhealthy: {r}", r["name"]);
        }
    }
    ensure!(seen == 9, "{seen} rules loaded: {rules}");
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
