//! Budgets, alert rules and policies through the whole pipeline: real Apache Kafka,
//! real PostgreSQL, every component as its own process, and real HTTP
//! receivers for the notifications.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::events::{self, id};
use agentops_e2e::webhook::{Received, Receiver};
use agentops_e2e::{Component, Stack, StackOptions};
use chrono::Utc;
use serde_json::{json, Value};

/// A generic webhook channel of the stack's org pointing at `url`.
async fn webhook_channel(stack: &Stack, url: &str) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, $2, 'webhook', $3, 'test-secret') RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(format!("hook-{}", id()))
    .bind(url)
    .fetch_one(&stack.pool)
    .await?)
}

fn field<'a>(r: &'a Received, name: &str) -> &'a Value {
    // The webhook body is the alert itself (or wraps it under `alert`).
    match r.body.get(name) {
        Some(v) => v,
        None => &r.body["alert"][name],
    }
}

/// (kind, transition) of each received notification, counted.
fn tally(received: &[Received]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in received {
        let kind = field(r, "kind").as_str().unwrap_or("?").to_owned();
        let tr = field(r, "transition")
            .as_str()
            .unwrap_or("firing")
            .to_owned();
        *out.entry((kind, tr)).or_default() += 1;
    }
    out
}

async fn directives_for(stack: &Stack, agent: &str) -> anyhow::Result<Vec<Value>> {
    let hb = json!({"event_id": id(), "type": "heartbeat", "agent_id": agent,
                    "timestamp": Utc::now().to_rfc3339()});
    let (status, body) = stack.post_events(&hb).await?;
    anyhow::ensure!(status == 202, "heartbeat: {status} {body}");
    Ok(body["directives"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_crossing_during_a_processor_sigkill_alerts_once_per_threshold_and_pauses(
) -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let mut stack = Stack::start(
        "govbudget",
        StackOptions {
            processors: 2,
            env: vec![
                ("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into()),
                ("AGENTOPS_BUDGET_SWEEP_SECS".into(), "1".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    let channel = webhook_channel(&stack, &hook.url).await?;
    // $2/day, warn at 80% ($1.60, run 178), exceeded at 100% ($2.00, run 223),
    // pause the org's agents at 100%. Each run costs 2 × LLM_CALL_COST = $0.009.
    let budget: String = sqlx::query_scalar(
        "INSERT INTO budgets (org_id, name, period, limit_usd, thresholds, pause_at_pct, channels)
         VALUES ($1, 'fleet', 'day', 2.0, '{80,100}', 100, ARRAY[$2::uuid]) RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(&channel)
    .fetch_one(&stack.pool)
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // configuration reload

    let (burst, _, _) = events::fleet(300, 10, 0, "burst");
    stack.send_all(&burst[..500], 50).await?;
    // SIGKILL one of the two processors mid-burst; it comes back (static
    // membership) and replays what it had not committed.
    stack.kill(Component::Processors, 0)?;
    stack.send_all(&burst[500..1000], 50).await?;
    stack.restart(Component::Processors, 0).await?;
    stack.send_all(&burst[1000..], 50).await?;

    stack
        .eventually(
            Duration::from_secs(90),
            "warn and exceeded notifications",
            || async { Ok((hook.received().len() >= 2).then_some(())) },
        )
        .await?;
    stack
        .eventually(
            Duration::from_secs(90),
            "all 1,500 events projected",
            || async { Ok((stack.event_rows().await? == 1500).then_some(())) },
        )
        .await?;
    // Both budget checkers keep looking at the final spend for a while.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = tally(&hook.received());
    let want = BTreeMap::from([
        (("budget_exceeded".to_owned(), "firing".to_owned()), 1),
        (("budget_warn".to_owned(), "firing".to_owned()), 1),
    ]);
    assert_eq!(
        got,
        want,
        "exactly one warn and one exceeded: {:?}",
        hook.received()
    );
    let exceeded = hook
        .received()
        .into_iter()
        .find(|r| field(r, "kind") == "budget_exceeded")
        .expect("exceeded");
    assert!(field(&exceeded, "value").as_f64().unwrap() >= 2.0);
    assert!(
        field(&exceeded, "message")
            .as_str()
            .unwrap()
            .contains("; paused "),
        "{:?}",
        exceeded.body
    );
    // Every agent that spent is paused: those known at the crossing, and the
    // ones only the other instance had seen as they spend again.

    // The auto-pause reaches the gateway's answers and the agent's status.
    for n in 0..10 {
        let agent = format!("agent-{n}");
        stack
            .eventually(
                Duration::from_secs(15),
                &format!("{agent} paused"),
                || async { Ok((!directives_for(&stack, &agent).await?.is_empty()).then_some(())) },
            )
            .await?;
    }
    let directives = directives_for(&stack, "agent-3").await?;
    assert_eq!(directives.len(), 1, "{directives:?}");
    assert_eq!(directives[0]["agent_id"], "agent-3");
    assert_eq!(directives[0]["action"], "pause");
    assert!(directives[0]["reason"].as_str().unwrap().contains("fleet"));
    assert!(directives_for(&stack, "never-spent").await?.is_empty());
    let agents = stack.get("/v1/agents?limit=50").await?;
    let agent3 = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == "agent-3")
        .cloned()
        .expect("agent-3 listed");
    assert_eq!(agent3["status"], "paused", "{agent3}");

    // An admin resumes agent-3: the budget, still exceeded and still checked
    // (agent-3 keeps spending), does not pause it again.
    let admin = |path: String| {
        stack
            .http
            .post(format!("{}{path}", stack.query_url))
            .bearer_auth(&stack.admin_key)
            .json(&json!({}))
            .send()
    };
    let r = admin("/v1/admin/agents/agent-3/resume".into()).await?;
    assert!(r.status().is_success(), "{}", r.text().await?);
    let (more, _, _) = events::fleet(20, 1, 0, "after-resume");
    let more: Vec<Value> = more
        .into_iter()
        .map(|mut e| {
            e["agent_id"] = json!("agent-3");
            e
        })
        .collect();
    stack.send_all(&more, 50).await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // many budget checks
    assert!(
        directives_for(&stack, "agent-3").await?.is_empty(),
        "resume sticks"
    );
    assert_eq!(directives_for(&stack, "agent-4").await?.len(), 1);

    // Deleting the budget lifts the pauses it set.
    sqlx::query("DELETE FROM budgets WHERE id = $1::uuid")
        .bind(&budget)
        .execute(&stack.pool)
        .await?;
    stack
        .eventually(Duration::from_secs(15), "pauses lifted", || async {
            Ok(directives_for(&stack, "agent-4")
                .await?
                .is_empty()
                .then_some(()))
        })
        .await?;
    Ok(())
}

/// Insert an alert rule for the stack's org; returns its id.
async fn rule(stack: &Stack, name: &str, spec: Value, channel: &str) -> anyhow::Result<String> {
    let s = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_owned);
    let f = |k: &str| spec.get(k).and_then(Value::as_f64);
    let i = |k: &str| spec.get(k).and_then(Value::as_i64).map(|v| v as i32);
    Ok(sqlx::query_scalar(
        "INSERT INTO alert_rules (org_id, name, kind, scope_kind, scope_value, threshold,
             window_secs, min_runs, minutes, cooldown_secs, channels)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, 1), $9, $10, ARRAY[$11::uuid])
         RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(name)
    .bind(s("kind"))
    .bind(s("scope_kind").unwrap_or("agent".into()))
    .bind(s("scope_value"))
    .bind(f("threshold"))
    .bind(i("window_secs"))
    .bind(i("min_runs"))
    .bind(i("minutes"))
    .bind(i("cooldown_secs").unwrap_or(3600))
    .bind(channel)
    .fetch_one(&stack.pool)
    .await?)
}

/// (state, history states) of every alert of a rule, oldest first.
async fn rule_alerts(stack: &Stack, rule_id: &str) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT alert_id, state FROM alerts WHERE source_id = $1::uuid ORDER BY created_at",
    )
    .bind(rule_id)
    .fetch_all(&stack.pool)
    .await?;
    let mut out = Vec::new();
    for (alert_id, state) in rows {
        let history: Vec<String> =
            sqlx::query_scalar("SELECT state FROM alert_history WHERE alert_id = $1 ORDER BY id")
                .bind(&alert_id)
                .fetch_all(&stack.pool)
                .await?;
        out.push((state, history));
    }
    Ok(out)
}

async fn until_alerts(
    stack: &Stack,
    rule_id: &str,
    what: &str,
    want: &[(&str, &[&str])],
) -> anyhow::Result<()> {
    let want: Vec<(String, Vec<String>)> = want
        .iter()
        .map(|(s, h)| (s.to_string(), h.iter().map(|x| x.to_string()).collect()))
        .collect();
    stack
        .eventually(Duration::from_secs(60), what, || async {
            Ok((rule_alerts(stack, rule_id).await? == want).then_some(()))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_fire_on_crafted_streams_respect_cooldown_and_resolve() -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let stack = Stack::start(
        "govrules",
        StackOptions {
            processors: 2,
            env: vec![
                ("AGENTOPS_RULES_INTERVAL_MS".into(), "300".into()),
                ("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "500".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    let ch = webhook_channel(&stack, &hook.url).await?;
    let errors = rule(
        &stack,
        "errors",
        json!({"kind": "error_rate", "scope_value": "err-agent",
        "threshold": 0.5, "window_secs": 600, "min_runs": 5}),
        &ch,
    )
    .await?;
    let cost = rule(
        &stack,
        "cost",
        json!({"kind": "cost_per_day", "scope_value": "cost-agent",
        "threshold": 0.02}),
        &ch,
    )
    .await?;
    // The same rule without a cooldown: it fires again after resolving.
    let flap = rule(
        &stack,
        "flap",
        json!({"kind": "error_rate", "scope_value": "flap-agent",
        "threshold": 0.5, "window_secs": 600, "min_runs": 5, "cooldown_secs": 0}),
        &ch,
    )
    .await?;
    let slow = rule(
        &stack,
        "slow",
        json!({"kind": "latency_p95", "scope_value": "slow-agent",
        "threshold": 2000.0, "window_secs": 600, "min_runs": 5}),
        &ch,
    )
    .await?;
    let silent = rule(
        &stack,
        "silent",
        json!({"kind": "no_heartbeat", "scope_kind": "org",
        "minutes": 2}),
        &ch,
    )
    .await?;
    let stuck = rule(
        &stack,
        "stuck",
        json!({"kind": "stuck_run", "scope_kind": "org",
        "minutes": 2}),
        &ch,
    )
    .await?;

    // error_rate: 8 of 10 runs fail → fires (both rules).
    let mut evs = Vec::new();
    for i in 0..10 {
        for agent in ["err-agent", "flap-agent"] {
            evs.extend(events::run(
                agent,
                &format!("{agent}-err-{i}"),
                i < 8,
                500,
                30,
            ));
        }
    }
    // cost_per_day: 3 runs × $0.009 = $0.027 > $0.02.
    for i in 0..3 {
        evs.extend(events::run(
            "cost-agent",
            &format!("cost-{i}"),
            false,
            500,
            30,
        ));
    }
    // latency_p95: 6 runs of 5 s against 2 s (and a fast agent that does not count).
    for i in 0..6 {
        evs.extend(events::run(
            "slow-agent",
            &format!("slow-{i}"),
            false,
            5000,
            30,
        ));
        evs.extend(events::run(
            "fast-agent",
            &format!("fast-{i}"),
            false,
            100,
            30,
        ));
    }
    // no_heartbeat: an agent whose last heartbeat was 5 minutes ago.
    let ago = |m: i64| (Utc::now() - chrono::Duration::minutes(m)).to_rfc3339();
    evs.push(
        json!({"event_id": id(), "type": "heartbeat", "agent_id": "hb-agent", "timestamp": ago(5)}),
    );
    // stuck_run: started 5 minutes ago, never finished; and one that finished.
    evs.push(
        json!({"event_id": id(), "type": "run_started", "agent_id": "stuck-agent",
                    "run_id": "stuck-1", "timestamp": ago(5)}),
    );
    stack.send_all(&evs, 100).await?;

    until_alerts(
        &stack,
        &errors,
        "error_rate fires",
        &[("firing", &["firing"])],
    )
    .await?;
    until_alerts(&stack, &flap, "flap fires", &[("firing", &["firing"])]).await?;
    until_alerts(
        &stack,
        &cost,
        "cost_per_day fires",
        &[("firing", &["firing"])],
    )
    .await?;
    until_alerts(
        &stack,
        &slow,
        "latency_p95 fires",
        &[("firing", &["firing"])],
    )
    .await?;
    until_alerts(
        &stack,
        &silent,
        "no_heartbeat fires",
        &[("firing", &["firing"])],
    )
    .await?;
    until_alerts(
        &stack,
        &stuck,
        "stuck_run fires",
        &[("firing", &["firing"])],
    )
    .await?;
    let scope: String =
        sqlx::query_scalar("SELECT scope_key FROM alerts WHERE source_id = $1::uuid")
            .bind(&silent)
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(scope, "agent=hb-agent");

    // The agent speaks again, the run finishes, 40 good runs dilute the errors,
    // 150 fast runs bring the p95 down: those all resolve.
    let mut evs = vec![
        json!({"event_id": id(), "type": "heartbeat", "agent_id": "hb-agent", "timestamp": ago(0)}),
        json!({"event_id": id(), "type": "run_completed", "agent_id": "stuck-agent",
               "run_id": "stuck-1", "timestamp": ago(0), "latency_ms": 300000, "status": "ok"}),
    ];
    for i in 0..40 {
        for agent in ["err-agent", "flap-agent"] {
            evs.extend(events::run(
                agent,
                &format!("{agent}-ok-{i}"),
                false,
                500,
                20,
            ));
        }
    }
    for i in 0..150 {
        evs.extend(events::run(
            "slow-agent",
            &format!("quick-{i}"),
            false,
            100,
            20,
        ));
    }
    stack.send_all(&evs, 100).await?;
    until_alerts(
        &stack,
        &silent,
        "no_heartbeat resolves",
        &[("resolved", &["firing", "resolved"])],
    )
    .await?;
    until_alerts(
        &stack,
        &stuck,
        "stuck_run resolves",
        &[("resolved", &["firing", "resolved"])],
    )
    .await?;
    for (id, what) in [
        (&errors, "error_rate resolves"),
        (&flap, "flap resolves"),
        (&slow, "latency_p95 resolves"),
    ] {
        until_alerts(&stack, id, what, &[("resolved", &["firing", "resolved"])]).await?;
    }

    // Errors come back (68 of 110 runs failed) and slow runs too (36 of 186),
    // within the cooldown: no new alert, except for the rule without one.
    // Cost keeps rising: its open alert is not fired again.
    let mut evs = Vec::new();
    for i in 0..60 {
        for agent in ["err-agent", "flap-agent"] {
            evs.extend(events::run(
                agent,
                &format!("{agent}-again-{i}"),
                true,
                500,
                10,
            ));
        }
    }
    for i in 0..30 {
        evs.extend(events::run(
            "slow-agent",
            &format!("slow-again-{i}"),
            false,
            5000,
            10,
        ));
    }
    evs.extend(events::run("cost-agent", "cost-more", false, 500, 10));
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(
            Duration::from_secs(60),
            "second error burst projected",
            || async { Ok((stack.event_rows().await? >= 177 + 1152 + 755).then_some(())) },
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // ten more passes
    assert_eq!(
        rule_alerts(&stack, &errors).await?,
        vec![(
            "resolved".to_owned(),
            vec!["firing".to_owned(), "resolved".to_owned()]
        )],
        "the cooldown holds the second error burst back"
    );
    assert_eq!(
        rule_alerts(&stack, &slow).await?,
        vec![(
            "resolved".to_owned(),
            vec!["firing".to_owned(), "resolved".to_owned()]
        )],
        "the cooldown holds the slow runs back"
    );
    until_alerts(
        &stack,
        &flap,
        "without a cooldown the rule fires again",
        &[
            ("resolved", &["firing", "resolved"]),
            ("firing", &["firing"]),
        ],
    )
    .await?;
    assert_eq!(rule_alerts(&stack, &cost).await?.len(), 1);

    // Notifications: one firing per alert, one resolved per resolution.
    stack
        .eventually(Duration::from_secs(30), "rule notifications", || async {
            Ok((hook.received().len() >= 12).then_some(()))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = tally(&hook.received());
    let f = |k: &str, t: &str| ((k.to_owned(), t.to_owned()), 1usize);
    let want = BTreeMap::from([
        (("error_rate".to_owned(), "firing".to_owned()), 3), // errors once, flap twice
        (("error_rate".to_owned(), "resolved".to_owned()), 2),
        f("cost_per_day", "firing"),
        f("latency_p95", "firing"),
        f("latency_p95", "resolved"),
        f("no_heartbeat", "firing"),
        f("no_heartbeat", "resolved"),
        f("stuck_run", "firing"),
        f("stuck_run", "resolved"),
    ]);
    assert_eq!(got, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_flag_alert_and_pause_with_violations_recorded_once() -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let stack = Stack::start("govpolicy", StackOptions::default()).await?;
    let ch = webhook_channel(&stack, &hook.url).await?;
    for (name, kind, names, limit, action) in [
        ("no-o3", "model_denylist", vec!["o3"], None, "alert"),
        (
            "small-calls",
            "max_tokens_per_call",
            vec![],
            Some(5000.0),
            "flag",
        ),
        ("no-shell", "forbidden_tools", vec!["shell"], None, "pause"),
        ("cheap-runs", "max_cost_per_run", vec![], Some(0.01), "flag"),
    ] {
        sqlx::query(
            "INSERT INTO policies (org_id, name, kind, names, limit_value, action, channels)
             VALUES ($1, $2, $3, $4, $5, $6, ARRAY[$7::uuid])",
        )
        .bind(&stack.org_id)
        .bind(name)
        .bind(kind)
        .bind(names)
        .bind(limit)
        .bind(action)
        .bind(&ch)
        .execute(&stack.pool)
        .await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // configuration reload

    let now = Utc::now().to_rfc3339();
    let llm = |agent: &str, run: &str, model: &str, input: i64| {
        json!({"event_id": id(), "type": "llm_call", "agent_id": agent, "run_id": run,
               "timestamp": now, "provider": "openai", "model": model,
               "input_tokens": input, "output_tokens": 200})
    };
    let denied = [
        llm("o3-agent", "o3-run", "o3", 100),
        llm("o3-agent", "o3-run", "o3", 100),
    ];
    let big = llm("big-agent", "big-run", "gpt-4o-mini", 10_000);
    let shell = json!({"event_id": id(), "type": "tool_call", "agent_id": "shell-agent",
                       "run_id": "shell-run", "timestamp": now, "tool_name": "shell"});
    // $0.0045 per call: the third call of the run crosses $0.01.
    let pricey: Vec<Value> = (0..4)
        .map(|_| llm("cost-agent", "cost-run", "gpt-4o", 1000))
        .collect();
    let mut evs: Vec<Value> = denied.to_vec();
    evs.extend([big.clone(), shell.clone()]);
    evs.extend(pricey.iter().cloned());
    stack.send_all(&evs, 100).await?;
    // The same batch again (a client retry): nothing is recorded twice.
    stack.send_all(&evs, 100).await?;

    let violations = stack
        .eventually(Duration::from_secs(30), "violations recorded", || async {
            let mut rows: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT p.name, v.event_id::text, v.agent_id, v.action FROM policy_violations v
                 JOIN policies p ON p.id = v.policy_id",
            )
            .fetch_all(&stack.pool)
            .await?;
            rows.sort();
            Ok((rows.len() >= 5).then_some(rows))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut want = vec![
        (
            "cheap-runs".to_owned(),
            pricey[2]["event_id"].as_str().unwrap().to_owned(),
            "cost-agent".to_owned(),
            "flag".to_owned(),
        ),
        (
            "no-o3".to_owned(),
            denied[0]["event_id"].as_str().unwrap().to_owned(),
            "o3-agent".to_owned(),
            "alert".to_owned(),
        ),
        (
            "no-o3".to_owned(),
            denied[1]["event_id"].as_str().unwrap().to_owned(),
            "o3-agent".to_owned(),
            "alert".to_owned(),
        ),
        (
            "no-shell".to_owned(),
            shell["event_id"].as_str().unwrap().to_owned(),
            "shell-agent".to_owned(),
            "pause".to_owned(),
        ),
        (
            "small-calls".to_owned(),
            big["event_id"].as_str().unwrap().to_owned(),
            "big-agent".to_owned(),
            "flag".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(violations, want);
    let recorded: Value = sqlx::query_scalar(
        "SELECT event FROM policy_violations v JOIN policies p ON p.id = v.policy_id
         WHERE p.name = 'no-shell'",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(
        recorded["tool_name"], "shell",
        "the violating event is kept: {recorded}"
    );

    // Flagged events carry the policy names into the projections.
    let flagged = stack
        .eventually(
            Duration::from_secs(30),
            "flagged events projected",
            || async {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT attributes->>'agentops.policy_violations' FROM events
                 WHERE event_id = $1::uuid",
                )
                .bind(big["event_id"].as_str().unwrap())
                .fetch_all(&stack.pool)
                .await?;
                Ok(rows.into_iter().next())
            },
        )
        .await?;
    assert_eq!(flagged.0, "small-calls");

    // Alerts: one for the denied model (two violations, same agent and day), one
    // for the pause; none for flags.
    stack
        .eventually(Duration::from_secs(30), "policy notifications", || async {
            Ok((hook.received().len() >= 2).then_some(()))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = tally(&hook.received());
    let want = BTreeMap::from([
        (("forbidden_tools".to_owned(), "firing".to_owned()), 1),
        (("model_denylist".to_owned(), "firing".to_owned()), 1),
    ]);
    assert_eq!(got, want, "{:?}", hook.received());

    // The pause reaches the gateway for that agent only.
    let d = directives_for(&stack, "shell-agent").await?;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["action"], "pause");
    assert!(d[0]["reason"].as_str().unwrap().contains("no-shell"));
    assert!(directives_for(&stack, "o3-agent").await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_of_every_scope_and_period_alert_on_their_own_spend() -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let stack = Stack::start(
        "govscopes",
        StackOptions {
            env: vec![("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into())],
            ..Default::default()
        },
    )
    .await?;
    let channel = webhook_channel(&stack, &hook.url).await?;
    // (name, scope kind, scope value, period, limit); each run costs $0.009 (gpt-4o).
    let specs = [
        ("agent-week", "agent", Some("agent-a"), "week", 0.02), // 3 runs: crosses
        ("agent-day", "agent", Some("agent-b"), "day", 0.02),   // 1 run: does not
        ("tag-month", "tag", Some("team=pay"), "month", 0.03),  // 4 tagged runs: crosses
        ("model-day", "model", Some("gpt-4o"), "day", 0.06),    // all 8 runs: crosses
        ("workflow-day", "workflow", Some("wf-other"), "day", 0.001), // no spend there
    ];
    let mut ids = BTreeMap::new();
    for (name, kind, value, period, limit) in specs {
        let id: String = sqlx::query_scalar(
            "INSERT INTO budgets (org_id, name, scope_kind, scope_value, period, limit_usd,
                 thresholds, channels)
             VALUES ($1, $2, $3, $4, $5, $6, '{100}', ARRAY[$7::uuid]) RETURNING id::text",
        )
        .bind(&stack.org_id)
        .bind(name)
        .bind(kind)
        .bind(value)
        .bind(period)
        .bind(limit)
        .bind(&channel)
        .fetch_one(&stack.pool)
        .await?;
        ids.insert(name, id);
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // configuration reload

    let mut evs = Vec::new();
    for i in 0..3 {
        evs.extend(events::run("agent-a", &format!("a-{i}"), false, 500, 30));
    }
    evs.extend(events::run("agent-b", "b-0", false, 500, 30));
    for i in 0..4 {
        for mut e in events::run("agent-c", &format!("c-{i}"), false, 500, 30) {
            e["attributes"] = json!({"team": "pay"});
            evs.push(e);
        }
    }
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "three budget alerts", || async {
            Ok((hook.received().len() >= 3).then_some(()))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = Utc::now();
    let key = |p: &str| match p {
        "week" => {
            use chrono::Datelike;
            let w = now.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        "month" => now.format("%Y-%m").to_string(),
        _ => now.format("%Y-%m-%d").to_string(),
    };
    let mut got: Vec<String> = hook
        .received()
        .iter()
        .map(|r| field(r, "alert_id").as_str().unwrap_or_default().to_owned())
        .collect();
    got.sort();
    let mut want = vec![
        format!("budget:{}:{}:100", ids["agent-week"], key("week")),
        format!("budget:{}:{}:100", ids["tag-month"], key("month")),
        format!("budget:{}:{}:100", ids["model-day"], key("day")),
    ];
    want.sort();
    assert_eq!(got, want, "{:?}", hook.received());
    let tagged = hook
        .received()
        .into_iter()
        .find(|r| field(r, "scope_key") == "tag=team=pay")
        .expect("tag budget alert");
    assert!((field(&tagged, "value").as_f64().unwrap() - 0.036).abs() < 1e-9);
    Ok(())
}

/// A budget created (or lowered) after its spend is already projected, with
/// no new spend coming, still alerts: a budget new to the processors is
/// checked as soon as they load it, not only when its org spends again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_created_after_its_spend_alerts_without_new_spend() -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let stack = Stack::start(
        "govlate",
        StackOptions {
            env: vec![
                ("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into()),
                ("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "500".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    let channel = webhook_channel(&stack, &hook.url).await?;
    // Four runs at $0.009 each, all projected before any budget exists.
    let mut evs = Vec::new();
    for i in 0..4 {
        evs.extend(events::run("agent-l", &format!("l-{i}"), false, 500, 30));
    }
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "the spend projected", || async {
            Ok((stack.event_rows().await? == 20).then_some(()))
        })
        .await?;
    // Long past the processors' handling of that spend (budget ticks of 200 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    sqlx::query(
        "INSERT INTO budgets (org_id, name, scope_kind, scope_value, period, limit_usd,
             thresholds, channels)
         VALUES ($1, 'late', 'org', NULL, 'day', 0.02, '{100}', ARRAY[$2::uuid])",
    )
    .bind(&stack.org_id)
    .bind(&channel)
    .execute(&stack.pool)
    .await?;
    let got = stack
        .eventually(
            Duration::from_secs(30),
            "the late budget's alert",
            || async { Ok(hook.received().first().cloned()) },
        )
        .await?;
    anyhow::ensure!(
        field(&got, "kind") == "budget_exceeded",
        "not a budget alert: {:?}",
        got.body
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    anyhow::ensure!(hook.received().len() == 1, "{:?}", hook.received());
    Ok(())
}
