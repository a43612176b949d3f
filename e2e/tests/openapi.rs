//! The OpenAPI documents against the running services: schemathesis (from
//! PyPI, pinned in `e2e/python/requirements.txt`, installed into the venv
//! `deploy/local/lib.sh` `ensure_python_tools` makes) generates requests
//! from each service's `GET /openapi.json` and sends them with a real key,
//! after a small event mix (runs, failures, a budget, a channel, a pause);
//! every answer must be no 5xx, a documented status, and match its schema.
//! The query API gets an admin key of its own, the gateway an ingest key.
//! Schemathesis reuses ids it has seen in answers, so the calls that revoke
//! a key run in a pass of their own (where no answer lists a key), and the
//! platform admins' org routes last, with a platform org's admin key.
//! Bounded: `--max-examples` per operation, a fixed `--seed`, no stateful
//! phase.

use std::path::PathBuf;
use std::time::Duration;

use agentops_e2e::{events, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

/// Cases per operation and phase; the seed makes runs reproducible.
const MAX_EXAMPLES: &str = "30";
const SEED: &str = "14";

/// `st` of the venv with schemathesis: beside `AGENTOPS_TEST_PYTHON` (set by
/// deploy/local/test.sh), else in the venv it creates.
fn schemathesis() -> Result<PathBuf> {
    let python = std::env::var("AGENTOPS_TEST_PYTHON").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-otel/bin/python"),
        PathBuf::from,
    );
    let st = python.with_file_name("st");
    ensure!(
        st.exists(),
        "no schemathesis at {}: run the suite through deploy/local/test.sh \
         (ensure_python_tools in deploy/local/lib.sh installs e2e/python/requirements.txt) \
         or set AGENTOPS_TEST_PYTHON to a venv's python that has it",
        st.display()
    );
    Ok(st)
}

/// Revoking a key (own org's or, for platform admins, any org's).
const REVOKE: &str = r"/keys/\{key_id\}";
/// The platform admins' routes.
const ORGS: &str = r"^/v1/admin/orgs";

/// Run schemathesis against `base`'s document with `key` (and `filter`,
/// schemathesis' include/exclude options); its output.
async fn run_schemathesis(name: &str, base: &str, key: &str, filter: &[&str]) -> Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "agentops-schemathesis-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let out = tokio::process::Command::new(schemathesis()?)
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        // One worker: with two threads, hypothesis parses sources with
        // `ast.parse` in both at once, and CPython 3.11 (this machine's
        // 3.11.7) keeps the AST recursion depth per interpreter, not per
        // thread: "SystemError: AST constructor recursion depth mismatch"
        // came back as a runtime error of a random operation.
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--generation-database", "none", "--no-color"])
        // The key below is the one; do not generate `x-api-key` values.
        .args(["--generation-with-security-parameters", "false"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .args(filter)
        .output()
        .await
        .context("running schemathesis")?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "schemathesis against {name} ({}):\n{text}",
        out.status
    );
    Ok(text)
}

async fn post(stack: &Stack, path: &str, key: &str, body: Value) -> Result<Value> {
    let r = stack
        .http
        .post(format!("{}{path}", stack.query_url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    ensure!(status.is_success(), "POST {path}: {status} {body}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_schema_mismatch() -> Result<()> {
    let stack = Stack::start("openapi", StackOptions::default()).await?;
    let (evs, _, _) = events::fleet(30, 3, 4, "oa");
    stack.send_all(&evs, 50).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 150).then_some(()))
        })
        .await?;
    let admin = &stack.admin_key;
    post(
        &stack,
        "/v1/admin/budgets",
        admin,
        json!({"name": "daily", "period": "day", "limit_usd": 0.01}),
    )
    .await?;
    post(
        &stack,
        "/v1/admin/channels",
        admin,
        json!({"name": "hook", "kind": "webhook", "url": "https://hooks.example.com/x"}),
    )
    .await?;
    post(
        &stack,
        "/v1/admin/agents/agent-1/pause",
        admin,
        json!({"reason": "openapi test"}),
    )
    .await?;
    // A key of its own for the run: nothing it does can revoke the stack's.
    let key = post(
        &stack,
        "/v1/admin/keys",
        admin,
        json!({"scopes": ["admin"], "name": "schemathesis"}),
    )
    .await?;
    let key = key["key"].as_str().context("key")?.to_owned();

    for base in [&stack.query_url, &stack.gateway_url] {
        let doc: Value = stack
            .http
            .get(format!("{base}/openapi.json"))
            .send()
            .await?
            .json()
            .await?;
        ensure!(doc["openapi"] == "3.1.0", "{base}: {doc}");
        let page = stack.http.get(format!("{base}/docs")).send().await?;
        ensure!(page.status() == 200, "{base}/docs: {}", page.status());
        let csp = page.headers().get("content-security-policy").cloned();
        ensure!(csp.is_some_and(|v| v.to_str().unwrap_or_default().contains("'sha256-")));
        ensure!(page.text().await?.contains("/openapi.json"));
    }

    let q = &stack.query_url;
    // One regex per option: schemathesis keeps the last of a repeated one.
    let rest = ["--exclude-path-regex", &format!("{REVOKE}|{ORGS}")];
    eprintln!("{}", run_schemathesis("query-api", q, &key, &rest).await?);
    let gateway = &stack.gateway_url;
    eprintln!(
        "{}",
        run_schemathesis("gateway", gateway, &stack.ingest_key, &[]).await?
    );
    // The stack's keys still work after both.
    stack.get("/v1/metrics/overview").await?;
    let revoke = ["--include-path-regex", &format!("^/v1/admin{REVOKE}")];
    eprintln!(
        "{}",
        run_schemathesis("query-api-revoke", q, &key, &revoke).await?
    );
    let platform_id = format!("{}-platform", stack.org_id);
    let platform = agentops_query_api::admin::provision_org(
        &stack.pool,
        &platform_id,
        "Platform",
        true,
        "e2e",
    )
    .await?;
    let orgs = ["--include-path-regex", ORGS];
    eprintln!(
        "{}",
        run_schemathesis("query-api-orgs", q, &platform[2].secret, &orgs).await?
    );
    Ok(())
}
