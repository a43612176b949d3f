//! Budgets that stop a coding agent (issue 17 item 5), end to end: a
//! budget scoped to a project pauses that project when its events (which
//! name it, contract v2) pass the pause threshold; the processors write the
//! pause (`scope_controls`), the alert says what was paused, the gateway's
//! `GET /v1/directives` answers it, and the collector's Claude Code hook
//! (`agentops-collector hook claude-code`, run as Claude Code runs it: the
//! hook JSON on stdin, in a checkout of the project) denies the tool call
//! with the budget's reason. A session of another project passes; a
//! gateway that never answers lets the tool run within the hook's bound;
//! an operator's resume lets the paused project's tools run again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agentops_e2e::{events, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const SHOP: &str = "github.com/acme/shop";
const INFRA: &str = "github.com/acme/infra";

fn collector_bin() -> PathBuf {
    let dir = std::env::var("AGENTOPS_BIN_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"),
        PathBuf::from,
    );
    dir.join("agentops-collector")
}

/// A checkout whose `origin` is `remote`.
fn checkout(dir: &Path, remote: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for args in [vec!["init", "-q"], vec!["remote", "add", "origin", remote]] {
        let out = std::process::Command::new("git")
            .args(&args)
            .current_dir(dir)
            .output()?;
        ensure!(out.status.success(), "git {args:?}: {out:?}");
    }
    Ok(dir.to_owned())
}

/// What the hook did: exit code, stdout, stderr.
struct Hooked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the hook as Claude Code does before a tool call in `cwd`.
async fn hook(
    endpoint: &str,
    key: &str,
    state: &Path,
    cwd: &Path,
    session: &str,
) -> Result<Hooked> {
    let mut child = tokio::process::Command::new(collector_bin())
        .args(["--state-dir"])
        .arg(state)
        .args([
            "--endpoint",
            endpoint,
            "hook",
            "claude-code",
            "--timeout-ms",
            "1500",
        ])
        .env("AGENTOPS_COLLECTOR_API_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let input = json!({
        "session_id": session,
        "transcript_path": cwd.join("transcript.jsonl"),
        "cwd": cwd,
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "npm test"},
    });
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(input.to_string().as_bytes()).await?;
    drop(stdin);
    // Ten times the bound: fail rather than hang (the bound itself is the
    // hook's own tests' business).
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .context("the hook did not return")??;
    Ok(Hooked {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The decision in a hook's output (None: no output, the tool runs).
fn decision(h: &Hooked) -> Result<Option<(String, String)>> {
    if h.stdout.trim().is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(h.stdout.trim())
        .with_context(|| format!("hook output: {}", h.stdout))?;
    let o = &v["hookSpecificOutput"];
    Ok(Some((
        o["permissionDecision"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        o["permissionDecisionReason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )))
}

fn call(project: &str, session: &str, cost: f64) -> Value {
    json!({"event_id": events::id(), "type": "llm_call", "agent_id": "claude-code",
           "run_id": session, "session_id": session, "project_id": project,
           "machine_id": "m-1", "workspace_id": format!("ws-{session}"),
           "timestamp": chrono::Utc::now().to_rfc3339(), "provider": "anthropic",
           "model": "claude-sonnet-4-5", "input_tokens": 100, "cost_usd": cost})
}

async fn directives(stack: &Stack, query: &str) -> Result<Value> {
    let r = stack
        .http
        .get(format!("{}/v1/directives?{query}", stack.gateway_url))
        .bearer_auth(&stack.ingest_key)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    ensure!(status == 200, "directives: {status} {v}");
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_budget_pauses_its_sessions_and_the_hook_denies_their_tools() -> Result<()> {
    let stack = Stack::start("coding-budgets", StackOptions::default()).await?;
    let dir = std::env::temp_dir().join(format!("agentops-{}", stack.name));
    let state = dir.join("state");
    let shop = checkout(&dir.join("src/shop"), "git@github.com:acme/shop.git")?;
    let infra = checkout(&dir.join("src/infra"), "https://github.com/acme/infra.git")?;

    // A daily budget of $1 on the shop project, paused at 100%.
    stack
        .create_budget(
            &json!({"name": "shop", "scope_kind": "project", "scope_value": SHOP,
                    "period": "day", "limit_usd": 1.0, "thresholds": [50],
                    "pause_at_pct": 100}),
        )
        .await?;

    // Before: nothing paused; both projects' tools run.
    for (cwd, s) in [(&shop, "s-shop"), (&infra, "s-infra")] {
        let h = hook(&stack.gateway_url, &stack.ingest_key, &state, cwd, s).await?;
        ensure!(h.code == Some(0) && decision(&h)?.is_none(), "{}", h.stderr);
    }

    // The shop's sessions spend $1.20; the infra project spends $5 (no budget).
    let (status, body) = stack
        .post_events(&json!([
            call(SHOP, "s-shop", 0.7),
            call(SHOP, "s-shop-2", 0.5),
            call(INFRA, "s-infra", 5.0)
        ]))
        .await?;
    ensure!(status == 202, "{status} {body}");

    // The processors pause the project; the gateway answers it.
    let paused = stack
        .eventually(Duration::from_secs(60), "project paused", || async {
            let v = directives(
                &stack,
                "project_id=github.com%2Facme%2Fshop&session_id=s-new",
            )
            .await?;
            Ok(v["directives"]
                .as_array()
                .filter(|d| !d.is_empty())
                .cloned())
        })
        .await?;
    ensure!(
        paused[0]["scope"] == "project"
            && paused[0]["id"] == SHOP
            && paused[0]["action"] == "pause"
            && paused[0]["reason"] == "budget 'shop' reached 100%",
        "{paused:?}"
    );
    let other = directives(&stack, "project_id=github.com%2Facme%2Finfra").await?;
    ensure!(other["directives"] == json!([]), "{other}");
    // No scope named: a 400 naming the parameter.
    let r = stack
        .http
        .get(format!("{}/v1/directives", stack.gateway_url))
        .bearer_auth(&stack.ingest_key)
        .send()
        .await?;
    ensure!(r.status() == 400);
    let v: Value = r.json().await?;
    ensure!(v["error"]["field"] == "agent_id", "{v}");

    // The budget's alert says what it paused.
    let alert = stack
        .eventually(Duration::from_secs(30), "exceeded alert", || async {
            let v = stack.get("/v1/alerts?state=firing").await?;
            Ok(v["alerts"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["kind"] == "budget_exceeded").cloned()))
        })
        .await?;
    ensure!(
        alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("paused project=github.com/acme/shop")),
        "{alert}"
    );

    // A shop session (even a new one) is denied, with the reason; infra's passes.
    let h = hook(
        &stack.gateway_url,
        &stack.ingest_key,
        &state,
        &shop,
        "s-new",
    )
    .await?;
    let (d, reason) = decision(&h)?.context("the hook answered nothing")?;
    ensure!(
        h.code == Some(0) && d == "deny",
        "{} {}",
        h.stdout,
        h.stderr
    );
    ensure!(
        reason.contains(SHOP) && reason.contains("budget 'shop' reached 100%"),
        "{reason}"
    );
    let h = hook(
        &stack.gateway_url,
        &stack.ingest_key,
        &state,
        &infra,
        "s-infra",
    )
    .await?;
    ensure!(h.code == Some(0) && decision(&h)?.is_none(), "{}", h.stdout);
    // The session, project and machine pages show it.
    let s = stack.get("/v1/sessions/s-shop").await?;
    ensure!(
        s["session"]["status"] == "paused"
            && s["session"]["status_reason"] == "budget 'shop' reached 100%",
        "{s}"
    );

    // A gateway that accepts and never answers: the tool runs, a line is logged.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let silent_url = format!("http://{}", silent.local_addr()?);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            open.push(sock);
        }
    });
    let h = hook(&silent_url, &stack.ingest_key, &state, &shop, "s-new").await?;
    held.abort();
    ensure!(h.code == Some(0) && decision(&h)?.is_none(), "{}", h.stdout);
    let log = std::fs::read_to_string(state.join("hook.log")).unwrap_or_default();
    ensure!(!log.trim().is_empty(), "a line in hook.log");

    // An operator resumes the project: the tools run again.
    let r = stack
        .http
        .post(format!(
            "{}/v1/admin/controls/project/github.com%2Facme%2Fshop/resume",
            stack.query_url
        ))
        .bearer_auth(&stack.admin_key)
        .json(&json!({"reason": "raised the limit"}))
        .send()
        .await?;
    ensure!(r.status() == 200, "resume: {}", r.status());
    stack
        .eventually(Duration::from_secs(30), "resumed", || async {
            let h = hook(
                &stack.gateway_url,
                &stack.ingest_key,
                &state,
                &shop,
                "s-new",
            )
            .await?;
            Ok((h.code == Some(0) && decision(&h)?.is_none()).then_some(()))
        })
        .await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
