//! Bounded reads (issue 12, items 0 and 4): every query parameter of every
//! read endpoint, given arbitrary text, answers 200 or a field-named 400
//! (never a panic, never a 5xx, never a series past its cap), and a query
//! that would hold the database is cut by the statement timeout.

use std::time::Duration;

use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Result};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

/// Read endpoints and their query parameters (the admin audit log wants the
/// admin key, the others a read key).
const ENDPOINTS: [(&str, &[&str]); 9] = [
    ("/v1/metrics/overview", &["window"]),
    ("/v1/metrics/timeseries", &["metric", "bucket", "window"]),
    ("/v1/failures/recent", &["limit"]),
    ("/v1/agents", &["limit"]),
    ("/v1/prices/unknown", &["window"]),
    ("/v1/alerts", &["state", "limit"]),
    ("/v1/policy-violations", &["limit", "agent_id"]),
    ("/v1/budgets/status", &[]),
    ("/v1/admin/audit", &["limit"]),
];

/// The documented cap on a series: 5000 steps (plus the partial first one).
const MAX_POINTS: usize = 5001;

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        // Plausible values, so that some requests get through to the database.
        prop::sample::select(vec![
            "15m",
            "24h",
            "7d",
            "90d",
            "1m",
            "5m",
            "1h",
            "1d",
            "runs",
            "cost",
            "events",
            "open",
            "acknowledged",
            "resolved",
            "10",
            "1",
            "500",
        ])
        .prop_map(str::to_owned),
        // Numbers with units, including ones whose product overflows.
        ("[0-9]{1,25}", "[smhdx]?").prop_map(|(n, u)| format!("{n}{u}")),
        "-?[0-9]{1,20}",
        // Anything at all, multi-byte characters and controls included.
        any::<String>(),
        "[a-z]{0,3}[\\x00-\\x1f\\x7f][a-z]{0,3}",
        "\\PC{0,4}",
    ]
}

fn request() -> impl Strategy<Value = (usize, Vec<(usize, String)>, bool)> {
    (
        0..ENDPOINTS.len(),
        prop::collection::vec((0..3usize, value()), 0..4),
        any::<bool>(),
    )
}

async fn check(
    stack: &Stack,
    (e, params, twice): (usize, Vec<(usize, String)>, bool),
) -> Result<()> {
    let (path, names) = ENDPOINTS[e];
    let mut query: Vec<(&str, String)> = Vec::new();
    if !names.is_empty() {
        for (i, v) in &params {
            query.push((names[i % names.len()], v.clone()));
        }
        if twice {
            if let Some(first) = query.first().cloned() {
                query.push(first);
            }
        }
    }
    let key = if path.starts_with("/v1/admin") {
        &stack.admin_key
    } else {
        &stack.read_key
    };
    let r = stack
        .http
        .get(format!("{}{path}", stack.query_url))
        .query(&query)
        .bearer_auth(key)
        .send()
        .await?;
    let status = r.status().as_u16();
    let body: Value = serde_json::from_str(&r.text().await?)
        .map_err(|e| anyhow::anyhow!("{path} {query:?}: {status}, not JSON: {e}"))?;
    match status {
        200 => {
            if let Some(points) = body["points"].as_array() {
                ensure!(
                    points.len() <= MAX_POINTS,
                    "{path} {query:?}: {} points",
                    points.len()
                );
            }
        }
        400 => {
            let field = body["error"]["field"].as_str().unwrap_or_default();
            ensure!(
                names.contains(&field) || field == "query",
                "{path} {query:?}: 400 without a parameter named: {body}"
            );
        }
        _ => anyhow::bail!("{path} {query:?}: {status} {body}"),
    }
    Ok(())
}

#[test]
fn every_read_parameter_answers_200_or_a_named_400_for_any_text() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The stack's drop needs the runtime.
    let _in_runtime = rt.enter();
    let stack = rt.block_on(Stack::start(
        "read_params",
        StackOptions {
            skip: vec![
                Component::Gateway,
                Component::Processors,
                Component::Projections,
            ],
            ..Default::default()
        },
    ))?;
    // Explicit cases first: the bounds the issue names.
    for (path, query) in [
        ("/v1/agents", "limit=1000000"),
        ("/v1/metrics/overview", "window=100000d"),
        ("/v1/metrics/overview", "window=213503982334602d"),
        ("/v1/metrics/timeseries", "window=90d&bucket=1m"),
        ("/v1/metrics/overview", "window=1%C3%A9"),
        ("/v1/metrics/overview", "window=24h&window=1h"),
        ("/v1/policy-violations", "agent_id=a%00b"),
        ("/v1/policy-violations", "agent_id=a%0Ab"),
    ] {
        let r = rt.block_on(
            stack
                .http
                .get(format!("{}{path}?{query}", stack.query_url))
                .bearer_auth(&stack.read_key)
                .send(),
        )?;
        ensure!(r.status() == 400, "{path}?{query}: {}", r.status());
        let body: Value = rt.block_on(r.json())?;
        ensure!(body["error"]["field"].is_string(), "{path}?{query}: {body}");
    }
    // Identifiers in paths: a NUL or a control character is a named 400, not
    // a database error.
    for path in ["/v1/runs/a%00b", "/v1/alerts/a%0Ab", "/v1/runs/%1B"] {
        let r = rt.block_on(
            stack
                .http
                .get(format!("{}{path}", stack.query_url))
                .bearer_auth(&stack.read_key)
                .send(),
        )?;
        ensure!(r.status() == 400, "{path}: {}", r.status());
        let body: Value = rt.block_on(r.json())?;
        ensure!(body["error"]["field"].is_string(), "{path}: {body}");
    }
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request(), |req| {
            rt.block_on(check(&stack, req))
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Still serving.
    let health = rt.block_on(stack.get("/v1/metrics/overview?window=1h"))?;
    ensure!(health["window"] == "1h");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_would_hold_the_database_is_cut_by_the_statement_timeout() -> Result<()> {
    let stack = Stack::start(
        "stmt_timeout",
        StackOptions {
            skip: vec![
                Component::Gateway,
                Component::Processors,
                Component::Projections,
            ],
            env: vec![(
                "AGENTOPS_DATABASE__STATEMENT_TIMEOUT_MS".into(),
                "1000".into(),
            )],
            ..Default::default()
        },
    )
    .await?;
    // A transaction holding the aggregates: the overview's statement waits
    // for the lock until the statement timeout cuts it.
    let mut tx = stack.pool.begin().await?;
    let levels: Vec<&str> = agentops_runtime::storage::LEVELS
        .iter()
        .map(|l| l.name)
        .collect();
    sqlx::raw_sql(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        levels.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    let r = stack
        .http
        .get(format!("{}/v1/metrics/overview?window=7d", stack.query_url))
        .bearer_auth(&stack.read_key)
        .timeout(Duration::from_secs(20))
        .send()
        .await?;
    let status = r.status().as_u16();
    let body: Value = r.json().await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    tx.rollback().await?;
    let overview = stack.get("/v1/metrics/overview?window=7d").await?;
    assert_eq!(overview["events"], 0);
    Ok(())
}

/// (path, rows allowed, body of row i, the cap's setting)
type Case = (
    &'static str,
    usize,
    Box<dyn Fn(usize) -> Value>,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_org_cap_refuses_the_next_row_with_a_409_naming_its_setting() -> Result<()> {
    let caps: Vec<(String, String)> = [
        ("CHANNELS", "2"),
        ("BUDGETS", "2"),
        ("POLICIES", "2"),
        ("PRICES", "2"),
        ("KEYS", "4"),
    ]
    .iter()
    .map(|(k, v)| (format!("AGENTOPS_CAPS__{k}"), (*v).to_owned()))
    .collect();
    let stack = Stack::start(
        "org_caps",
        StackOptions {
            skip: vec![
                Component::Gateway,
                Component::Processors,
                Component::Projections,
            ],
            env: caps,
            ..Default::default()
        },
    )
    .await?;
    let post = |path: &'static str, body: Value| {
        let stack = &stack;
        async move {
            let r = stack
                .http
                .post(format!("{}{path}", stack.query_url))
                .bearer_auth(&stack.admin_key)
                .json(&body)
                .send()
                .await?;
            let status = r.status().as_u16();
            anyhow::Ok((status, r.json::<Value>().await?))
        }
    };
    // The stack's org has 3 keys; a cap of 4 lets one more in.
    let cases: Vec<Case> = vec![
        (
            "/v1/admin/channels",
            2,
            Box::new(
                |i| serde_json::json!({"name": format!("c{i}"), "kind": "webhook", "url": "https://hooks.test/x"}),
            ),
            "caps.channels",
        ),
        (
            "/v1/admin/budgets",
            2,
            Box::new(
                |i| serde_json::json!({"name": format!("b{i}"), "period": "day", "limit_usd": 5}),
            ),
            "caps.budgets",
        ),
        (
            "/v1/admin/policies",
            2,
            Box::new(
                |i| serde_json::json!({"name": format!("p{i}"), "kind": "model_denylist", "names": ["o3"], "action": "flag"}),
            ),
            "caps.policies",
        ),
        (
            "/v1/admin/prices",
            2,
            Box::new(
                |i| serde_json::json!({"provider": "acme", "model": format!("m{i}"), "input": 1, "output": 2}),
            ),
            "caps.prices",
        ),
        (
            "/v1/admin/keys",
            1,
            Box::new(|i| serde_json::json!({"scopes": ["read"], "name": format!("k{i}")})),
            "caps.keys",
        ),
        (
            "/v1/admin/alert-rules",
            1000,
            Box::new(
                |i| serde_json::json!({"name": format!("r{i}"), "kind": "no_heartbeat", "minutes": 10}),
            ),
            "caps.alert_rules",
        ),
    ];
    for (path, allowed, body, setting) in &cases {
        for i in 0..*allowed {
            let (status, answer) = post(path, body(i)).await?;
            ensure!(status == 201, "{path} #{i}: {status} {answer}");
        }
        let (status, answer) = post(path, body(*allowed)).await?;
        ensure!(status == 409, "{path} past its cap: {status} {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        ensure!(message.contains(setting), "{path}: {answer}");
    }
    Ok(())
}
