//! `GET /v1/runs` and `GET /v1/runs/export` on a known mix of runs: every
//! filter returns exactly the runs the specs say, each sort orders them,
//! three cursor pages return exactly the runs that were there while new
//! runs arrive between the pages, the CSV and JSON exports equal the
//! search (quoting, formula neutralisation), bad parameters answer 400
//! naming the parameter, and another org sees none of it (404 on the run).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agentops_e2e::events::id;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Result};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{json, Value};

/// One run as sent: what every filter is checked against.
#[derive(Debug, Clone)]
struct Spec {
    run_id: String,
    agent: String,
    workflow: Option<String>,
    /// running | completed | failed
    status: &'static str,
    started: DateTime<Utc>,
    latency: i64,
    /// (provider, model, cost) of each LLM call.
    calls: Vec<(&'static str, &'static str, f64)>,
    team: Option<&'static str>,
    error: Option<(&'static str, String)>,
}

impl Spec {
    fn cost(&self) -> f64 {
        self.calls.iter().map(|c| c.2).sum()
    }

    fn models(&self) -> BTreeSet<&str> {
        self.calls.iter().map(|c| c.1).collect()
    }

    fn providers(&self) -> BTreeSet<&str> {
        self.calls.iter().map(|c| c.0).collect()
    }

    fn events(&self) -> Vec<Value> {
        let t = |ms: i64| (self.started + Span::milliseconds(ms)).to_rfc3339();
        let attrs = match self.team {
            Some(team) => json!({"team": team, "env": "prod"}),
            None => json!({}),
        };
        let mut out = vec![json!({
            "event_id": id(), "type": "run_started", "agent_id": self.agent,
            "run_id": self.run_id, "workflow_id": self.workflow, "timestamp": t(0),
            "attributes": attrs,
        })];
        for (i, (provider, model, cost)) in self.calls.iter().enumerate() {
            out.push(json!({
                "event_id": id(), "type": "llm_call", "agent_id": self.agent,
                "run_id": self.run_id, "timestamp": t(1 + i as i64), "provider": provider,
                "model": model, "input_tokens": 100, "output_tokens": 10,
                "cost_usd": cost, "latency_ms": 50, "status": "ok",
            }));
        }
        let end = |ty: &str| {
            let mut e = json!({
                "event_id": id(), "type": ty, "agent_id": self.agent, "run_id": self.run_id,
                "timestamp": t(self.latency), "latency_ms": self.latency,
            });
            if let Some((et, msg)) = &self.error {
                e["status"] = json!("error");
                e["error_type"] = json!(et);
                e["error_message"] = json!(msg);
            }
            e
        };
        match self.status {
            "completed" => out.push(end("run_completed")),
            "failed" => out.push(end("run_failed")),
            _ => {}
        }
        out
    }
}

const CALLS: [(&str, &str); 3] = [
    ("openai", "gpt-4o"),
    // Quotes, a comma, braces and a backslash: the run's model list is
    // passed to PostgreSQL as an array literal and must come back as sent.
    ("anthropic", "claude-sonnet-4 \"eval, {beta}\" \\x"),
    ("google", "gemini-2.5-pro"),
];

/// `n` runs started `age_from` seconds ago and earlier, a minute apart.
fn specs(prefix: &str, n: usize, now: DateTime<Utc>, age_from: i64) -> Vec<Spec> {
    (0..n)
        .map(|i| {
            let status = ["completed", "failed", "completed", "running"][i % 4];
            let error = (status == "failed").then(|| match i % 3 {
                0 => ("tool_error", format!("search timed out, \"retry\" {i}")),
                1 => (
                    "rate_limit",
                    "=HYPERLINK(\"http://x\",\"click\")".to_owned(),
                ),
                _ => ("tool_error", format!("50% of_calls failed\nline two {i}")),
            });
            let calls = (0..=(i % 3))
                .map(|k| {
                    let (p, m) = CALLS[(i + k) % 3];
                    // Multiples of 1/1024: sums are exact in any order.
                    (p, m, ((i * 7 + k * 3) % 23 + 1) as f64 / 1024.0)
                })
                .collect();
            Spec {
                run_id: format!("{prefix}-{i:03}"),
                agent: format!("agent-{}", i % 4),
                workflow: (i % 5 != 0).then(|| format!("wf-{}", i % 2)),
                status,
                started: now - Span::seconds(age_from + 60 * i as i64),
                latency: 100 + ((i as i64 * 7919) % 5000),
                calls,
                team: [Some("pay"), Some("search"), None][i % 3],
                error,
            }
        })
        .collect()
}

async fn send(stack: &Stack, specs: &[Spec]) -> Result<()> {
    let events: Vec<Value> = specs.iter().flat_map(Spec::events).collect();
    stack.send_all(&events, 200).await?;
    let ids: Vec<String> = specs.iter().map(|s| s.run_id.clone()).collect();
    let want: i64 = specs.iter().map(|s| s.events().len() as i64).sum();
    stack
        .eventually(Duration::from_secs(60), "runs projected", || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT COALESCE(sum(events), 0)::int8 FROM runs WHERE run_id = ANY($1)",
            )
            .bind(&ids)
            .fetch_one(&stack.pool)
            .await?;
            Ok((n == want).then_some(()))
        })
        .await
}

/// Every run of a search, following the cursor (at most 20 pages).
async fn all_pages(stack: &Stack, query: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut path = format!("/v1/runs?{query}&limit=500");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = stack.get(&path).await?;
        out.extend(page["runs"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
    anyhow::bail!("more than 20 pages")
}

fn ids(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["run_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_sorts_pages_and_exports_match_the_runs() -> Result<()> {
    let stack = Stack::start("runs_search", StackOptions::default()).await?;
    let now = Utc::now();
    // 48 runs in the last day (the newest 10 minutes old), 4 more 30 hours back (outside the default window).
    let mut all = specs("rs", 48, now, 600);
    let old = specs("old", 4, now, 30 * 3600);
    all.extend(old.iter().cloned());
    send(&stack, &all).await?;
    let recent: Vec<&Spec> = all.iter().filter(|s| s.run_id.starts_with("rs")).collect();

    // Every field of a run as the spec says.
    let rows = all_pages(&stack, "window=2d").await?;
    ensure!(rows.len() == all.len(), "{} runs", rows.len());
    let by_id: BTreeMap<String, &Value> = rows
        .iter()
        .map(|r| (r["run_id"].as_str().unwrap_or_default().to_owned(), r))
        .collect();
    for s in &all {
        let r = by_id[&s.run_id];
        ensure!(
            r["agent_id"] == s.agent.as_str() && r["status"] == s.status,
            "{r}"
        );
        ensure!(r["workflow_id"] == json!(s.workflow), "{r}");
        ensure!(
            (r["cost_usd"].as_f64().unwrap_or(-1.0) - s.cost()).abs() < 1e-9,
            "{r}"
        );
        ensure!(r["llm_calls"] == s.calls.len() as i64, "{r}");
        ensure!(r["models"] == json!(s.models()), "{r}");
        ensure!(r["providers"] == json!(s.providers()), "{r}");
        let tags = match s.team {
            Some(t) => json!({"team": t, "env": "prod"}),
            None => json!({}),
        };
        ensure!(r["tags"] == tags, "{r}");
        let running = s.status == "running";
        ensure!(
            r["latency_ms"]
                == if running {
                    json!(null)
                } else {
                    json!(s.latency)
                },
            "{r}"
        );
        ensure!(
            r["error_message"] == json!(s.error.as_ref().map(|e| &e.1)),
            "{r}"
        );
    }

    // Each filter: exactly the runs of the specs that pass it.
    type Check = Box<dyn Fn(&Spec) -> bool>;
    let filters: Vec<(String, Check)> = vec![
        ("".into(), Box::new(|_: &Spec| true)),
        (
            "agent_id=agent-1".into(),
            Box::new(|s: &Spec| s.agent == "agent-1"),
        ),
        (
            "workflow_id=wf-0".into(),
            Box::new(|s: &Spec| s.workflow.as_deref() == Some("wf-0")),
        ),
        (
            "status=failed".into(),
            Box::new(|s: &Spec| s.status == "failed"),
        ),
        (
            "status=running".into(),
            Box::new(|s: &Spec| s.status == "running"),
        ),
        (
            "model=gemini-2.5-pro".into(),
            Box::new(|s: &Spec| s.models().contains("gemini-2.5-pro")),
        ),
        (
            "provider=anthropic".into(),
            Box::new(|s: &Spec| s.providers().contains("anthropic")),
        ),
        (
            "error_type=rate_limit".into(),
            Box::new(|s: &Spec| s.error.as_ref().is_some_and(|e| e.0 == "rate_limit")),
        ),
        (
            "tag=team%3Dpay".into(),
            Box::new(|s: &Spec| s.team == Some("pay")),
        ),
        (
            "min_cost_usd=0.03".into(),
            Box::new(|s: &Spec| s.cost() >= 0.03),
        ),
        (
            "max_cost_usd=0.015".into(),
            Box::new(|s: &Spec| s.cost() <= 0.015),
        ),
        (
            "min_latency_ms=2000&max_latency_ms=4000".into(),
            Box::new(|s: &Spec| s.status != "running" && (2000..=4000).contains(&s.latency)),
        ),
        (
            format!("q={}", enc("TIMED OUT")),
            Box::new(|s: &Spec| s.error.as_ref().is_some_and(|e| e.1.contains("timed out"))),
        ),
        (
            format!("q={}", enc("50% of_")),
            Box::new(|s: &Spec| s.error.as_ref().is_some_and(|e| e.1.contains("50% of_"))),
        ),
        // `%` and `_` match themselves, not anything.
        (format!("q={}", enc("5_%")), Box::new(|_: &Spec| false)),
        (
            "agent_id=agent-2&status=completed&provider=openai".into(),
            Box::new(|s: &Spec| {
                s.agent == "agent-2" && s.status == "completed" && s.providers().contains("openai")
            }),
        ),
    ];
    for (query, keep) in &filters {
        let got: BTreeSet<String> = ids(&all_pages(&stack, query).await?).into_iter().collect();
        let want: BTreeSet<String> = recent
            .iter()
            .filter(|s| keep(s))
            .map(|s| s.run_id.clone())
            .collect();
        ensure!(got == want, "{query}: got {got:?}, want {want:?}");
    }
    // Time ranges: the old runs only, by from/to.
    let (from, to) = (now - Span::hours(31), now - Span::hours(29));
    let got = ids(&all_pages(
        &stack,
        &format!(
            "from={}&to={}",
            enc(&from.to_rfc3339()),
            enc(&to.to_rfc3339())
        ),
    )
    .await?);
    let want: BTreeSet<String> = old.iter().map(|s| s.run_id.clone()).collect();
    ensure!(
        got.iter().cloned().collect::<BTreeSet<_>>() == want,
        "{got:?}"
    );

    // Each sort, each order: the specs' order (ties by run id).
    for (sort, key) in [
        (
            "started_at",
            Box::new(|s: &Spec| s.started.timestamp_micros() as f64) as Box<dyn Fn(&Spec) -> f64>,
        ),
        ("cost_usd", Box::new(|s: &Spec| s.cost())),
        (
            "latency_ms",
            Box::new(|s: &Spec| {
                if s.status == "running" {
                    -1.0
                } else {
                    s.latency as f64
                }
            }),
        ),
    ] {
        for order in ["desc", "asc"] {
            let got = ids(&all_pages(&stack, &format!("sort={sort}&order={order}")).await?);
            let mut want: Vec<&&Spec> = recent.iter().collect();
            want.sort_by(|a, b| {
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.run_id.cmp(&b.run_id))
            });
            if order == "desc" {
                want.reverse();
            }
            let want: Vec<String> = want.iter().map(|s| s.run_id.clone()).collect();
            ensure!(
                got == want,
                "sort={sort}&order={order}: {got:?} vs {want:?}"
            );
        }
    }

    // Three pages of 10 by start, new runs arriving before each next page:
    // the pages hold exactly the first 30 runs that were there.
    let mut pages = Vec::new();
    let mut cursor = String::new();
    for p in 0..3 {
        let path = if p == 0 {
            "/v1/runs?limit=10&status=completed".to_owned()
        } else {
            format!("/v1/runs?limit=10&status=completed&cursor={cursor}")
        };
        let page = stack.get(&path).await?;
        pages.extend(ids(page["runs"].as_array().map_or(&[][..], |v| v)));
        cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
        let fresh = specs(&format!("new{p}"), 3, Utc::now(), 1);
        send(&stack, &fresh).await?;
    }
    let mut want: Vec<&&Spec> = recent.iter().filter(|s| s.status == "completed").collect();
    want.sort_by_key(|s| std::cmp::Reverse(s.started));
    let want: Vec<String> = want.iter().take(30).map(|s| s.run_id.clone()).collect();
    ensure!(pages == want, "pages {pages:?} vs {want:?}");
    // The same by cost, ascending: new runs may join later pages, but every
    // run that was there comes exactly once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/runs?limit=10&sort=cost_usd&order=asc".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = stack.get(&path).await?;
        seen.extend(ids(page["runs"].as_array().map_or(&[][..], |v| v)));
        let fresh = specs(&format!("more{}", seen.len()), 1, Utc::now(), 1);
        send(&stack, &fresh).await?;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    ensure!(unique.len() == seen.len(), "a run came twice: {seen:?}");
    let old_ones: Vec<&String> = seen.iter().filter(|r| r.starts_with("rs-")).collect();
    let mut want: Vec<&&Spec> = recent.iter().collect();
    want.sort_by(|a, b| {
        a.cost()
            .partial_cmp(&b.cost())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    ensure!(
        old_ones == want.iter().map(|s| &s.run_id).collect::<Vec<_>>(),
        "cost pages: {old_ones:?}"
    );

    // Exports equal the search.
    let filter = "status=failed&window=2d&sort=cost_usd";
    let search = all_pages(&stack, filter).await?;
    let r = stack
        .http
        .get(format!(
            "{}/v1/runs/export?format=json&{filter}",
            stack.query_url
        ))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(r.status() == 200, "{}", r.status());
    ensure!(r.headers()["x-agentops-truncated"] == "false");
    ensure!(r.headers()["content-disposition"]
        .to_str()?
        .starts_with("attachment; filename=\"runs-"));
    let body: Value = r.json().await?;
    ensure!(
        body["runs"] == json!(search) && body["truncated"] == false,
        "{body}"
    );
    let r = stack
        .http
        .get(format!(
            "{}/v1/runs/export?format=csv&{filter}",
            stack.query_url
        ))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(r.headers()["content-type"]
        .to_str()?
        .starts_with("text/csv"));
    let csv = parse_csv(&r.text().await?);
    ensure!(csv.len() == search.len() + 1, "{} rows", csv.len());
    let header = &csv[0];
    ensure!(header[0] == "run_id" && header.len() == 17, "{header:?}");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or(usize::MAX);
    for (row, run) in csv[1..].iter().zip(&search) {
        ensure!(row.len() == 17, "{row:?}");
        ensure!(row[col("run_id")] == run["run_id"].as_str().unwrap_or_default());
        ensure!(row[col("cost_usd")].parse::<f64>()? == run["cost_usd"].as_f64().unwrap_or(-1.0));
        ensure!(
            row[col("models")]
                == run["models"]
                    .as_array()
                    .map(|m| m
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(";"))
                    .unwrap_or_default()
        );
        let msg = run["error_message"].as_str().unwrap_or_default();
        let want = if msg.starts_with('=') {
            format!("'{msg}")
        } else {
            msg.to_owned()
        };
        ensure!(row[col("error_message")] == want, "{row:?} vs {msg}");
    }
    ensure!(
        csv.iter()
            .any(|r| r[col("error_message")].starts_with("'=HYPERLINK")),
        "no neutralised formula"
    );

    // Bad parameters: 400 naming each.
    for (query, field) in [
        ("window=1y".to_owned(), "window"),
        ("from=yesterday".to_owned(), "from"),
        ("status=ok".to_owned(), "status"),
        ("tag=team".to_owned(), "tag"),
        ("min_cost_usd=-1".to_owned(), "min_cost_usd"),
        ("max_latency_ms=x".to_owned(), "max_latency_ms"),
        ("sort=tokens".to_owned(), "sort"),
        ("order=up".to_owned(), "order"),
        ("limit=501".to_owned(), "limit"),
        ("cursor=garbage".to_owned(), "cursor"),
        (format!("q={}", "x".repeat(201)), "q"),
    ] {
        for path in ["/v1/runs", "/v1/runs/export"] {
            let r = stack
                .http
                .get(format!("{}{path}?{query}", stack.query_url))
                .bearer_auth(&stack.read_key)
                .send()
                .await?;
            ensure!(r.status() == 400, "{path}?{query}: {}", r.status());
            let body: Value = r.json().await?;
            ensure!(body["error"]["field"] == field, "{path}?{query}: {body}");
        }
    }
    // A cursor of another sort.
    let page = stack.get("/v1/runs?limit=1").await?;
    let c = page["next_cursor"].as_str().unwrap_or_default();
    for other in ["sort=cost_usd", "order=asc"] {
        let r = stack
            .http
            .get(format!("{}/v1/runs?{other}&cursor={c}", stack.query_url))
            .bearer_auth(&stack.read_key)
            .send()
            .await?;
        let body: Value = r.json().await?;
        ensure!(body["error"]["field"] == "cursor", "{other}: {body}");
    }
    let r = stack
        .http
        .get(format!("{}/v1/runs/export?format=xml", stack.query_url))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(r.status() == 400);

    // Another org: no runs, and the run is not found.
    let org = format!("{}-other", stack.org_id);
    let keys =
        agentops_query_api::admin::create_org_with_keys(&stack.pool, &org, "Other", "e2e").await?;
    let other = &keys[1].secret;
    let r = stack
        .http
        .get(format!("{}/v1/runs?window=2d", stack.query_url))
        .bearer_auth(other)
        .send()
        .await?;
    let body: Value = r.json().await?;
    ensure!(
        body["runs"] == json!([]) && body["next_cursor"].is_null(),
        "{body}"
    );
    for path in [
        format!("/v1/runs/{}", all[0].run_id),
        "/v1/agents/agent-1".to_owned(),
    ] {
        let r = stack
            .http
            .get(format!("{}{path}", stack.query_url))
            .bearer_auth(other)
            .send()
            .await?;
        ensure!(r.status() == 404, "{path}: {}", r.status());
    }
    Ok(())
}

/// RFC 4180: quoted cells, doubled quotes, CRLF rows.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}
