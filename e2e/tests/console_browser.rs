//! The operator console in headless Chromium (Playwright) against a real
//! stack with a known event mix and budgets of each color: a viewer signs in
//! (and out, which revokes the session), the KPI cards and
//! gauge colors equal the API's answers, the window picker redraws every
//! panel and lands in the URL; an owner creates a budget (a bad value shown
//! next to its field) and a key (its secret shown once); the viewer sees no
//! admin actions and gets 403 calling the API anyway; a member acknowledges
//! a firing alert; every page renders without console errors. Runs
//! `deploy/local/browser/console.test.mjs` on the real build
//! (`query-api/console/dist`, made by the test command); screenshots in
//! `target/e2e-logs/console-*.png`.
//!
//! The second test (`console-ops.test.mjs`, its own stack and mix: 120 runs
//! over 6 agents, every other one failed, tagged by team, one call of an
//! unpriced model): a window change and a custom range redraw every panel;
//! a failed run sent to the gateway is in the live ticker within 2 s of its
//! 202 and its row opens the run's timeline with the API's steps; the runs
//! explorer pages through exactly the API's runs while new ones arrive;
//! an admin's pause from the agent page is the gateway's next directive,
//! a viewer has no pause button; TV mode at 1920×1080 has no scrollbars and
//! redraws the ticker at most once a second.
//!
//! The third test (`console-hierarchy.test.mjs`, its own stack: coding-agent
//! events naming 2 projects, 2 machines, 3 workspaces and 4 sessions): the
//! projects, machines, project, machine, workspace and session pages show
//! the API's figures, breadcrumbs and timeline (subagent work marked); an
//! admin pauses a project and its session shows it, a viewer cannot.
//!
//! The tests take turns (one
//! stack at a time, so the 2 s budget is not shared with another stack):
//! nextest runs each test in its own process, so its `browser` test group
//! (`.config/nextest.toml`, one at a time) orders them; the lock below does
//! the same under `cargo test`, which runs them as threads of one process.

use std::path::PathBuf;
use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::{add_members, run_browser_test, Stack, StackOptions};
use serde_json::json;
use tokio::sync::Mutex;

/// One stack at a time under `cargo test` (see the module's note).
static TURN: Mutex<()> = Mutex::const_new(());

/// A stack whose query API serves the real console build, and the
/// repository root.
async fn console_stack(name: &str) -> anyhow::Result<(Stack, PathBuf)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = root.join("query-api/console/dist");
    anyhow::ensure!(
        build.join("index.html").exists(),
        "no console build in {}: run `cd query-api/console && npm ci && npm run build` (the test command does)",
        build.display()
    );
    let stack = Stack::start(
        name,
        StackOptions {
            env: vec![("AGENTOPS_CONSOLE_DIR".into(), build.display().to_string())],
            ..Default::default()
        },
    )
    .await?;
    Ok((stack, root))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_api_figures_in_chromium() -> anyhow::Result<()> {
    let _turn = TURN.lock().await;
    let (stack, root) = console_stack("console_browser").await?;
    let (evs, _, _) = events::fleet(60, 6, 4, "cb");
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 300).then_some(()))
        })
        .await?;
    // One budget per color: far below (green), just past 80% (amber), over (red).
    let spent: f64 = sqlx::query_scalar("SELECT COALESCE(sum(cost_usd), 0)::float8 FROM events")
        .fetch_one(&stack.pool)
        .await?;
    anyhow::ensure!(spent > 0.0, "the mix has a cost");
    for (name, limit) in [
        ("green", spent * 100.0),
        ("amber", spent / 0.85),
        ("red", spent / 2.0),
    ] {
        stack
            .create_budget(&json!({"name": name, "period": "month", "limit_usd": limit}))
            .await?;
    }
    // A row on each configuration page (its screenshot shows one).
    for (path, body) in [
        (
            "channels",
            json!({"name": "ops-slack", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/x"}),
        ),
        (
            "alert-rules",
            json!({"name": "errors", "kind": "error_rate", "threshold": 0.25, "window_secs": 900}),
        ),
        (
            "policies",
            json!({"name": "models", "kind": "model_denylist", "names": ["gpt-3.5-turbo"]}),
        ),
    ] {
        let r = stack
            .http
            .post(format!("{}/v1/admin/{path}", stack.query_url))
            .bearer_auth(&stack.admin_key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "{path}: {}", r.text().await?);
    }
    // A firing alert for the member to acknowledge: a policy's (the processors
    // resolve open rule alerts whose rule is gone, as this one's would be).
    let alert_id = "cb-alert-1";
    sqlx::query(
        "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message, source,
                             scope_key)
         VALUES ($1, $2, 'max_cost_per_run', '', 0.25, 0.5,
                 'a run cost $0.50, over the $0.25 limit', 'policy', 'agent=agent-1')",
    )
    .bind(alert_id)
    .bind(&stack.org_id)
    .execute(&stack.pool)
    .await?;
    sqlx::query(
        "INSERT INTO alert_history (alert_id, state, actor) VALUES ($1, 'firing', 'policy:costs')",
    )
    .bind(alert_id)
    .execute(&stack.pool)
    .await?;
    // People who sign in (created as the CLI does): a viewer, a member, an owner.
    use agentops_tenancy::people::Role;
    let password = "a long enough password 1";
    let people = [
        ("viewer@console.test", "Vera Viewer", Role::Viewer),
        ("member@console.test", "Mo Member", Role::Member),
        ("owner@console.test", "Olive Owner", Role::Owner),
    ];
    add_members(&stack.pool, &stack.org_id, password, &people).await?;
    let [(email, ..), (member, ..), (owner, ..)] = people;
    let shots = root.join("target/e2e-logs");
    std::fs::create_dir_all(&shots)?;
    run_browser_test(
        "console.test.mjs",
        &[
            ("AGENTOPS_QUERY_URL", stack.query_url.as_ref()),
            ("AGENTOPS_READ_KEY", stack.read_key.as_ref()),
            ("AGENTOPS_USER_EMAIL", email.as_ref()),
            ("AGENTOPS_USER_PASSWORD", password.as_ref()),
            ("AGENTOPS_MEMBER_EMAIL", member.as_ref()),
            ("AGENTOPS_MEMBER_PASSWORD", password.as_ref()),
            ("AGENTOPS_OWNER_EMAIL", owner.as_ref()),
            ("AGENTOPS_OWNER_PASSWORD", password.as_ref()),
            ("AGENTOPS_ALERT_ID", alert_id.as_ref()),
            ("AGENTOPS_SCREENSHOT_DIR", shots.as_os_str()),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_explores_runs_live_and_controls_agents_in_chromium() -> anyhow::Result<()> {
    let _turn = TURN.lock().await;
    let (stack, root) = console_stack("console_ops").await?;
    // 120 runs over 6 agents, every other one failed (ops-run-0, -2, ...);
    // even agents are team=pay, odd ones team=search.
    let (mut evs, failed, _) = events::fleet(120, 6, 2, "ops");
    anyhow::ensure!(failed == 60);
    for e in &mut evs {
        let n: usize = e["agent_id"].as_str().unwrap_or("agent-0")[6..].parse()?;
        let team = ["pay", "search"][n % 2];
        e["attributes"] = json!({ "team": team });
    }
    // One completed run with a call of a model without a price.
    let mut unpriced = events::run("agent-0", "ops-unpriced", false, 150, 60);
    unpriced[1]["provider"] = json!("acme");
    unpriced[1]["model"] = json!("mystery-llm");
    evs.extend(unpriced);
    let total = evs.len() as i64;
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == total).then_some(()))
        })
        .await?;
    stack
        .create_budget(&json!({"name": "agent-2 monthly", "scope_kind": "agent", "scope_value": "agent-2", "period": "month", "limit_usd": 1.0}))
        .await?;
    use agentops_tenancy::people::Role;
    let password = "a long enough password 2";
    let people = [
        ("admin@ops.test", "Ada Admin", Role::Admin),
        ("viewer@ops.test", "Vic Viewer", Role::Viewer),
    ];
    add_members(&stack.pool, &stack.org_id, password, &people).await?;
    let [(admin, ..), (viewer, ..)] = people;
    let shots = root.join("target/e2e-logs");
    std::fs::create_dir_all(&shots)?;
    run_browser_test(
        "console-ops.test.mjs",
        &[
            ("AGENTOPS_QUERY_URL", stack.query_url.as_ref()),
            ("AGENTOPS_GATEWAY_URL", stack.gateway_url.as_ref()),
            ("AGENTOPS_READ_KEY", stack.read_key.as_ref()),
            ("AGENTOPS_INGEST_KEY", stack.ingest_key.as_ref()),
            ("AGENTOPS_ADMIN_EMAIL", admin.as_ref()),
            ("AGENTOPS_VIEWER_EMAIL", viewer.as_ref()),
            ("AGENTOPS_PASSWORD", password.as_ref()),
            ("AGENTOPS_SCREENSHOT_DIR", shots.as_os_str()),
        ],
    )
    .await
}

/// One coding-agent event of `session` (in `place`: project, machine,
/// workspace, as the collector sends them: top-level ids, the machine's
/// name and the workspace's path as attributes), `at_ms` after `t0`.
fn coding_event(
    t0: chrono::DateTime<chrono::Utc>,
    at_ms: i64,
    session: &str,
    place: (&str, &str, &str, &str, &str),
    body: serde_json::Value,
) -> serde_json::Value {
    let (project, machine, machine_name, workspace, path) = place;
    let mut e = json!({
        "event_id": events::id(),
        "agent_id": "claude-code",
        "run_id": session,
        "timestamp": (t0 + chrono::Duration::milliseconds(at_ms)).to_rfc3339(),
        "project_id": project,
        "machine_id": machine,
        "workspace_id": workspace,
        "session_id": session,
        "attributes": {"machine_name": machine_name, "machine_os": "linux", "workspace_path": path,
                       "git_branch": "main"},
    });
    if let (Some(e), serde_json::Value::Object(b)) = (e.as_object_mut(), body) {
        for (k, v) in b {
            if k == "attributes" {
                if let (Some(a), serde_json::Value::Object(extra)) =
                    (e.get_mut("attributes").and_then(|a| a.as_object_mut()), v)
                {
                    a.extend(extra);
                }
            } else {
                e.insert(k, v);
            }
        }
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_navigates_the_coding_agent_hierarchy_in_chromium() -> anyhow::Result<()> {
    let _turn = TURN.lock().await;
    let (stack, root) = console_stack("console_hierarchy").await?;
    // 2 projects, 2 machines, 3 workspaces, 4 sessions (a minute apart, the
    // latest 2 minutes ago): shop on the laptop (2 sessions, the second with
    // a subagent's call) and on a CI runner (1, failed), billing on the laptop (1, running).
    let shop = "github.com/acme/shop";
    let billing = "github.com/acme/billing";
    let laptop = ("m-laptop-7f3a", "ada-laptop");
    let ci = ("m-ci-02b9", "ci-runner-2");
    let ws = [
        (shop, laptop, "ws-shop-laptop", "/home/ada/src/shop"),
        (shop, ci, "ws-shop-ci", "/builds/acme/shop"),
        (
            billing,
            laptop,
            "ws-billing-laptop",
            "/home/ada/src/billing",
        ),
    ];
    // (session, workspace, end: completed / failed / none, subagent step)
    let sessions = [
        ("sess-shop-1", 0, Some(false), false),
        ("sess-shop-ci-1", 1, Some(true), false),
        ("sess-shop-2", 0, Some(false), true),
        ("sess-billing-1", 2, None, false),
    ];
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(6);
    let mut evs = Vec::new();
    for (i, (session, w, end, subagent)) in sessions.iter().enumerate() {
        let (project, (machine, name), workspace, path) = ws[*w];
        let place = (project, machine, name, workspace, path);
        let start = i as i64 * 60_000;
        let n = i as i64 + 1;
        let ev = |at: i64, body| coding_event(t0, start + at, session, place, body);
        evs.push(ev(0, json!({"type": "run_started"})));
        evs.push(ev(
            1_000,
            json!({"type": "llm_call", "provider": "anthropic", "model": "claude-sonnet-4-5",
            "input_tokens": 1200 * n, "output_tokens": 300 * n, "cache_read_tokens": 5000,
            "cost_usd": 0.0125 * n as f64, "latency_ms": 2100, "status": "ok"}),
        ));
        evs.push(ev(2_000, json!({"type": "tool_call", "tool_name": "Bash", "latency_ms": 450 + n * 10, "status": "ok"})));
        if *subagent {
            evs.push(ev(
                3_000,
                json!({"type": "llm_call", "provider": "anthropic", "model": "claude-haiku-4-5",
                "input_tokens": 800, "output_tokens": 120, "cost_usd": 0.0021, "latency_ms": 900,
                "status": "ok", "attributes": {"sidechain": "true", "agent_kind": "subagent"}}),
            ));
        }
        evs.push(ev(
            4_000,
            json!({"type": "llm_call", "provider": "anthropic", "model": "claude-sonnet-4-5",
            "input_tokens": 900, "output_tokens": 150 * n, "cost_usd": 0.009 * n as f64,
            "latency_ms": 1700, "status": "ok"}),
        ));
        evs.push(ev(
            5_000,
            json!({"type": "tool_call", "tool_name": "Edit", "latency_ms": 35, "status": "ok"}),
        ));
        match end {
            Some(false) => evs.push(ev(
                6_000,
                json!({"type": "run_completed", "latency_ms": 6_000, "status": "ok"}),
            )),
            Some(true) => evs.push(ev(
                6_000,
                json!({"type": "run_failed", "latency_ms": 6_000, "status": "error",
                "error_type": "tool_error", "error_message": "cargo test failed: 3 tests failed"}),
            )),
            None => {}
        }
    }
    let total = evs.len() as i64;
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(
            Duration::from_secs(60),
            "projected with the hierarchy",
            || async {
                let listed = stack.get("/v1/sessions").await?;
                let n = listed["sessions"].as_array().map_or(0, Vec::len);
                Ok((n == 4 && stack.event_rows().await? == total).then_some(()))
            },
        )
        .await?;
    use agentops_tenancy::people::Role;
    let password = "a long enough password 3";
    let people = [
        ("admin@hierarchy.test", "Hal Admin", Role::Admin),
        ("viewer@hierarchy.test", "Val Viewer", Role::Viewer),
    ];
    add_members(&stack.pool, &stack.org_id, password, &people).await?;
    let [(admin, ..), (viewer, ..)] = people;
    let shots = root.join("target/e2e-logs");
    std::fs::create_dir_all(&shots)?;
    run_browser_test(
        "console-hierarchy.test.mjs",
        &[
            ("AGENTOPS_QUERY_URL", stack.query_url.as_ref()),
            ("AGENTOPS_READ_KEY", stack.read_key.as_ref()),
            ("AGENTOPS_ADMIN_EMAIL", admin.as_ref()),
            ("AGENTOPS_VIEWER_EMAIL", viewer.as_ref()),
            ("AGENTOPS_PASSWORD", password.as_ref()),
            ("AGENTOPS_SCREENSHOT_DIR", shots.as_os_str()),
        ],
    )
    .await
}
