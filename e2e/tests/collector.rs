//! The coding-agent collector against the real pipeline (issue 17): a
//! temporary home with one repository checked out twice and the transcripts
//! of three agents (a Claude Code session, its subagent, a Codex CLI
//! session; `e2e/python/coding_sessions.py`). The collector backfills them;
//! the projections hold exactly the sessions (one run each, the subagent's
//! usage rolled up into its parent's), tokens and cost, all under one
//! project in two workspaces. Then the gateway is killed while lines are
//! appended, a following collector is SIGKILLed, one pass gives up with the
//! events queued, the gateway comes back: the next pass sends the rest,
//! nothing lost, nothing doubled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

fn collector_bin() -> PathBuf {
    let dir = std::env::var("AGENTOPS_BIN_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"),
        PathBuf::from,
    );
    dir.join("agentops-collector")
}

/// The collector on `home`, keeping its state in `state`, sending to the stack.
fn collector(stack: &Stack, home: &Path, state: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(collector_bin());
    c.arg("--home")
        .arg(home)
        .arg("--state-dir")
        .arg(state)
        .args(["--endpoint", &stack.gateway_url])
        .args(args)
        .env("AGENTOPS_COLLECTOR_API_KEY", &stack.ingest_key)
        // Assistant messages are sent at once (the files are complete).
        .env("AGENTOPS_COLLECTOR_SETTLE_MS", "0")
        .env("AGENTOPS_COLLECTOR_SCAN_INTERVAL_MS", "200")
        .kill_on_drop(true);
    c
}

/// One `run --once` pass; its exit code (0: all sent, 2: events queued).
async fn once(stack: &Stack, home: &Path, state: &Path, timeout_secs: &str) -> Result<i32> {
    let out = collector(
        stack,
        home,
        state,
        &["run", "--once", "--once-timeout-secs", timeout_secs],
    )
    .output()
    .await?;
    let code = out.status.code().context("collector killed")?;
    ensure!(
        code == 0 || code == 2,
        "collector: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(code)
}

/// USD per million (input, output, cache read, cache write): processors/prices.toml.
fn price(model: &str) -> (f64, f64, f64, f64) {
    match model {
        m if m.starts_with("claude-sonnet-4-5") => (3.0, 15.0, 0.30, 3.75),
        m if m.starts_with("claude-haiku-4-5") => (1.0, 5.0, 0.10, 1.25),
        _ => (1.25, 10.0, 0.125, 1.25), // gpt-5 (gpt-5-codex by prefix)
    }
}

/// Wait until both sessions' runs hold what `want` (the generator's output)
/// says; checks their tokens, calls and cost against the events.
async fn sessions_hold(stack: &Stack, want: &Value, events: (i64, i64)) -> Result<()> {
    for (name, count) in [("claude", events.0), ("codex", events.1)] {
        let id = want[format!("{name}_session")]
            .as_str()
            .context("session")?;
        let run = stack
            .eventually(Duration::from_secs(60), "session projected", || async {
                let r = stack.get(&format!("/v1/runs/{id}")).await.ok();
                Ok(r.filter(|r| r["event_count"] == json!(count)))
            })
            .await
            .with_context(|| format!("{name} session {id}"))?;
        for (field, v) in want[name].as_object().context("totals")? {
            ensure!(
                &run[field] == v,
                "{name} {field}: {} != {v}: {run}",
                run[field]
            );
        }
        // Cost: every call priced from the table by its model.
        let mut cost = 0.0;
        for e in run["events"].as_array().context("timeline")? {
            if e["type"] != "llm_call" {
                continue;
            }
            let (i, o, cr, cw) = price(e["model"].as_str().unwrap_or_default());
            let n = |f: &str| e[f].as_f64().unwrap_or(0.0);
            cost += (n("input_tokens") * i
                + (n("output_tokens") + n("reasoning_tokens")) * o
                + n("cache_read_tokens") * cr
                + n("cache_write_tokens") * cw)
                / 1e6;
        }
        let got = run["cost_usd"].as_f64().unwrap_or(-1.0);
        ensure!((got - cost).abs() < 1e-9, "{name} cost {got}, want {cost}");
    }
    Ok(())
}

/// The hierarchy projections hold exactly one project (the normalized
/// remote) on one machine, in two workspaces (the two checkouts), with the
/// two sessions; the project's, machine's and workspaces' totals are the
/// sessions' (each session's the same as its run's).
async fn hierarchy_holds(stack: &Stack, want: &Value) -> Result<()> {
    let mut runs = Vec::new();
    for name in ["claude", "codex"] {
        let id = want[format!("{name}_session")]
            .as_str()
            .context("session")?;
        let run = stack.get(&format!("/v1/runs/{id}")).await?;
        let s = stack.get(&format!("/v1/sessions/{id}")).await?;
        let session = &s["session"];
        for (field, v) in [
            ("events", &run["event_count"]),
            ("llm_calls", &run["llm_calls"]),
            ("tool_calls", &run["tool_calls"]),
        ] {
            ensure!(&session[field] == v, "{name} {field}: {session} vs {run}");
        }
        let (a, b) = (session["cost_usd"].as_f64(), run["cost_usd"].as_f64());
        ensure!(
            a.zip(b).is_some_and(|(a, b)| (a - b).abs() < 1e-9),
            "{name} cost {a:?} vs {b:?}"
        );
        ensure!(session["project_id"] == "github.com/acme/shop", "{session}");
        let crumbs: Vec<&str> = s["breadcrumbs"]
            .as_array()
            .context("breadcrumbs")?
            .iter()
            .filter_map(|c| c["kind"].as_str())
            .collect();
        ensure!(crumbs == ["project", "machine", "workspace"], "{crumbs:?}");
        ensure!(
            s["timeline"].as_array().map(Vec::len)
                == run["event_count"].as_u64().map(|n| n as usize),
            "{name} timeline"
        );
        runs.push(session.clone());
    }
    let sum = |field: &str| -> f64 { runs.iter().map(|r| r[field].as_f64().unwrap_or(0.0)).sum() };
    let projects = stack.get("/v1/projects").await?;
    let projects = projects["projects"].as_array().context("projects")?;
    ensure!(projects.len() == 1, "{projects:?}");
    let p = &projects[0];
    ensure!(
        p["id"] == "github.com/acme/shop" && p["sessions"] == 2,
        "{p}"
    );
    for field in ["events", "llm_calls", "tool_calls"] {
        ensure!(
            p[field].as_f64() == Some(sum(field)),
            "project {field}: {p}"
        );
    }
    ensure!((p["cost_usd"].as_f64().unwrap_or(-1.0) - sum("cost_usd")).abs() < 1e-9);
    let page = stack.get("/v1/projects/github.com%2Facme%2Fshop").await?;
    let workspaces = page["workspaces"].as_array().context("workspaces")?;
    ensure!(workspaces.len() == 2, "{page}");
    for w in workspaces {
        ensure!(
            w["path"].as_str().is_some_and(|p| p.contains("/src/shop")),
            "{w}"
        );
    }
    let machines = page["machines"].as_array().context("machines")?;
    ensure!(
        machines.len() == 1 && machines[0]["workspaces"] == 2,
        "{page}"
    );
    ensure!(
        machines[0]["events"].as_f64() == Some(sum("events")),
        "{page}"
    );
    let all = stack.get("/v1/machines").await?;
    ensure!(all["machines"].as_array().map(Vec::len) == Some(1), "{all}");
    let listed = stack
        .get("/v1/sessions?project_id=github.com%2Facme%2Fshop")
        .await?;
    ensure!(
        listed["sessions"].as_array().map(Vec::len) == Some(2),
        "{listed}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_backfills_follows_and_survives_outages_and_kills() -> Result<()> {
    let mut stack = Stack::start("collector", StackOptions::default()).await?;
    let dir = std::env::temp_dir().join(format!("agentops-{}", stack.name));
    let (home, state) = (dir.join("home"), dir.join("state"));
    std::fs::create_dir_all(&home)?;
    let home_arg = home.to_string_lossy().into_owned();

    // Backfill: three agents' transcripts already on disk.
    let want = run_script("coding_sessions.py", &[&home_arg]).await?;
    ensure!(
        once(&stack, &home, &state, "30").await? == 0,
        "the first pass sends everything"
    );
    // Claude: start, 3 calls (one over two lines, one the subagent's), a tool;
    // Codex: start, 1 call, a tool.
    sessions_hold(&stack, &want, (5, 3)).await?;

    hierarchy_holds(&stack, &want).await?;
    let subagent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE org_id = $1 AND attributes->>'sidechain' = 'true'",
    )
    .bind(&stack.org_id)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        subagent == 1,
        "the subagent's call, in its parent's run: {subagent}"
    );

    // The gateway goes away while the agents append.
    stack.kill(Component::Gateway, 0)?;
    let want = run_script("coding_sessions.py", &[&home_arg, "--phase", "2"]).await?;
    // A following collector reads the new lines, cannot send for 25 s, and
    // is SIGKILLed (the gateway stays away about 30 s in all).
    let mut follower = collector(&stack, &home, &state, &["run"]).spawn()?;
    tokio::time::sleep(Duration::from_secs(25)).await;
    follower.start_kill()?;
    let _ = follower.wait().await;
    // A pass that gives up keeps them queued.
    ensure!(
        once(&stack, &home, &state, "2").await? == 2,
        "events stay queued while the gateway is down"
    );

    stack.restart(Component::Gateway, 0).await?;
    ensure!(
        once(&stack, &home, &state, "60").await? == 0,
        "the queue drains once it is back"
    );
    sessions_hold(&stack, &want, (6, 4)).await?;
    hierarchy_holds(&stack, &want).await?;
    // And a pass over unchanged files sends nothing more.
    ensure!(once(&stack, &home, &state, "30").await? == 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE org_id = $1")
        .bind(&stack.org_id)
        .fetch_one(&stack.pool)
        .await?;
    ensure!(n == 10, "{n} events stored, want 6 + 4");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
