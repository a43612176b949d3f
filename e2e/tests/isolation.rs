//! Tenant isolation on the data path (issue 12, item 0): the largest counts
//! and amounts validation accepts sum without error; an event the database
//! still refuses is dead-lettered while the rest of its batch, and other
//! orgs on its partition, move on; two orgs may send the same event id and
//! timestamp; identifiers with control characters are refused at every
//! ingest path with the field named.

use std::time::Duration;

use agentops_e2e::kafka::read_topic;
use agentops_e2e::{events, Stack, StackOptions};
use agentops_schemas::validate::{MAX_COST_USD, MAX_TOKENS};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

const TOKEN_FIELDS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
];

/// A second org on the stack's database, with its ingest key.
async fn second_org(stack: &Stack, suffix: &str) -> Result<(String, String)> {
    let org = format!("{}-{suffix}", stack.org_id);
    let keys =
        agentops_query_api::admin::create_org_with_keys(&stack.pool, &org, "Other org", "e2e")
            .await?;
    Ok((org, keys[0].secret.clone()))
}

async fn post_as(stack: &Stack, key: &str, batch: &[Value]) -> Result<(u16, Value)> {
    stack
        .post_raw(
            "/v1/events",
            serde_json::to_vec(&json!({ "events": batch }))?,
            Some(key),
        )
        .await
}

/// The test hook: a trigger makes the database refuse `table`'s rows of
/// agent `agent` with a constraint violation (SQLSTATE 23514).
async fn refuse_rows_of(stack: &Stack, table: &str, agent: &str) -> Result<()> {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.agent_id = '{agent}' THEN
                 RAISE EXCEPTION 'test hook: this {table} row is refused' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}
             FOR EACH ROW EXECUTE FUNCTION refuse_{table}();"
    ))
    .execute(&stack.pool)
    .await?;
    Ok(())
}

/// An LLM call at every cap at once.
fn maximal_call(agent: &str, run: &str, at: &str) -> Value {
    let mut e = json!({"event_id": events::id(), "type": "llm_call", "agent_id": agent,
        "run_id": run, "timestamp": at, "provider": "openai", "model": "gpt-4o",
        "cost_usd": MAX_COST_USD, "latency_ms": 1});
    for f in TOKEN_FIELDS {
        e[f] = json!(MAX_TOKENS);
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_dead_lettered_while_its_batch_and_other_orgs_move_on() -> Result<()> {
    // One partition: the refused event shares it with everything else.
    let stack = Stack::start(
        "isolation",
        StackOptions {
            partitions: Some(1),
            ..Default::default()
        },
    )
    .await?;
    let (org_b, key_b) = second_org(&stack, "b").await?;
    // The test hook: the database refuses one agent's events (a constraint
    // violation, as an overflowing sum or a bad value would be).
    refuse_rows_of(&stack, "events", "refused-by-db").await?;

    // 300 maximal calls into one run, one agent and one minute, with the
    // refused event in the middle of the same batch.
    const CALLS: i64 = 300;
    let at = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    let mut batch: Vec<Value> = (0..CALLS)
        .map(|_| maximal_call("max-agent", "max-run", &at))
        .collect();
    let poison = json!({"event_id": events::id(), "type": "llm_call", "agent_id": "refused-by-db",
        "run_id": "poison-run", "timestamp": at, "input_tokens": 10});
    let poison_id = poison["event_id"].as_str().context("id")?.to_owned();
    batch.insert(CALLS as usize / 2, poison);
    let (status, body) = post_as(&stack, &stack.ingest_key, &batch).await?;
    ensure!(status == 202, "{status} {body}");
    // Org B sends on the same partition right after.
    let b_run = events::run("b-agent", "b-run", false, 200, 1);
    let (status, body) = post_as(&stack, &key_b, &b_run).await?;
    ensure!(status == 202, "{status} {body}");

    // Org B's run is projected, and so is every maximal call.
    stack
        .eventually(Duration::from_secs(60), "org B's run projected", || async {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT events FROM runs WHERE org_id = $1 AND run_id = 'b-run'",
            )
            .bind(&org_b)
            .fetch_optional(&stack.pool)
            .await?;
            Ok((n == Some(5)).then_some(()))
        })
        .await?;
    let run: (i64, i64, i64, i64, i64, i64, f64) = stack
        .eventually(Duration::from_secs(60), "the maximal run", || async {
            let row: Option<(i64, i64, i64, i64, i64, i64, f64)> = sqlx::query_as(
                "SELECT events, input_tokens, output_tokens, cache_read_tokens,
                        cache_write_tokens, reasoning_tokens, cost_usd
                 FROM runs WHERE org_id = $1 AND run_id = 'max-run'",
            )
            .bind(&stack.org_id)
            .fetch_optional(&stack.pool)
            .await?;
            Ok(row.filter(|r| r.0 == CALLS))
        })
        .await?;
    let tokens = CALLS * MAX_TOKENS;
    assert_eq!(
        (run.1, run.2, run.3, run.4, run.5),
        (tokens, tokens, tokens, tokens, tokens)
    );
    assert_eq!(run.6, CALLS as f64 * MAX_COST_USD);
    let (agent_tokens, agent_cost): (i64, f64) = sqlx::query_as(
        "SELECT tokens_day, cost_day FROM agents WHERE org_id = $1 AND agent_id = 'max-agent'",
    )
    .bind(&stack.org_id)
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(agent_tokens, 5 * tokens);
    assert_eq!(agent_cost, CALLS as f64 * MAX_COST_USD);
    // The aggregates (one bucket) answer the overview.
    let overview = stack
        .eventually(Duration::from_secs(60), "the overview", || async {
            let o = stack.get("/v1/metrics/overview?window=1h").await?;
            Ok((o["events"] == CALLS).then_some(o))
        })
        .await?;
    assert_eq!(overview["cost_usd"], CALLS as f64 * MAX_COST_USD);

    // The refused event: not projected, on the dead-letter topic with the reason.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE agent_id = 'refused-by-db'")
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(stored, 0);
    let dlq = read_topic(&stack.topic("dlq"), Duration::from_secs(30), |r| {
        !r.is_empty()
    })
    .await?;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let reason = &dlq[0].headers["dlq.reason"];
    assert!(
        reason.contains("refused") && reason.contains("test hook"),
        "{reason}"
    );
    assert_eq!(dlq[0].headers["dlq.topic"], stack.topic("enriched"));
    let event = agentops_schemas::Codec::current().decode(&dlq[0].payload)?;
    assert_eq!(event.event_id, poison_id);

    // And the partition keeps flowing afterwards.
    let later = events::run("b-agent", "b-run-2", false, 200, 1);
    let (status, _) = post_as(&stack, &key_b, &later).await?;
    ensure!(status == 202);
    stack
        .eventually(Duration::from_secs(30), "a later run projected", || async {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT events FROM runs WHERE org_id = $1 AND run_id = 'b-run-2'",
            )
            .bind(&org_b)
            .fetch_optional(&stack.pool)
            .await?;
            Ok((n == Some(5)).then_some(()))
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orgs_sending_the_same_event_id_and_timestamp_each_count() -> Result<()> {
    let stack = Stack::start("same_id", StackOptions::default()).await?;
    let (org_b, key_b) = second_org(&stack, "b").await?;
    let shared = json!({"event_id": events::id(), "type": "llm_call", "agent_id": "a",
        "run_id": "r", "timestamp": chrono::Utc::now().to_rfc3339(), "input_tokens": 7});
    // B pre-empts A with A's id and timestamp; then both send again (a retry).
    for key in [&key_b, &stack.ingest_key, &key_b, &stack.ingest_key] {
        let (status, body) = post_as(&stack, key, std::slice::from_ref(&shared)).await?;
        ensure!(status == 202, "{status} {body}");
    }
    for org in [&stack.org_id, &org_b] {
        let row: (i64, i64) = stack
            .eventually(Duration::from_secs(30), "each org's run", || async {
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT events, input_tokens FROM runs WHERE org_id = $1 AND run_id = 'r'",
                )
                .bind(org)
                .fetch_optional(&stack.pool)
                .await?;
                Ok(row)
            })
            .await?;
        assert_eq!(row, (1, 7), "{org}: counted once, not zero, not twice");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = $1::uuid")
        .bind(shared["event_id"].as_str())
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(rows, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_with_control_characters_are_refused_at_every_ingest_path() -> Result<()> {
    let stack = Stack::start("ctrl_chars", StackOptions::gateway_only(vec![])).await?;
    let at = chrono::Utc::now().to_rfc3339();
    // JSON events.
    for (field, value) in [
        ("agent_id", "agent\nwith a newline"),
        ("run_id", "run\r1"),
        ("workflow_id", "wf\u{1b}[2J"),
        ("model", "gpt\u{7}"),
    ] {
        let mut e = json!({"event_id": events::id(), "type": "run_started", "agent_id": "a",
            "run_id": "r", "timestamp": at});
        e[field] = json!(value);
        let (status, body) = stack.post_events(&json!({ "events": [e] })).await?;
        assert_eq!(status, 400, "{field}: {body}");
        let text = body.to_string();
        assert!(
            text.contains(field) && text.contains("control character"),
            "{field}: {text}"
        );
    }
    // Heartbeats.
    let (status, body) = stack
        .post_raw(
            "/v1/heartbeat",
            serde_json::to_vec(&json!({"agent_id": "beat\u{0}er", "status": "ok"}))?,
            Some(&stack.ingest_key),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("agent_id"), "{body}");
    // OTLP: the agent comes from service.name.
    let now = chrono::Utc::now().timestamp_nanos_opt().context("now")?;
    let otlp = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc\nname"}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": (now - 1_000_000_000).to_string(), "endTimeUnixNano": now.to_string(),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}}
            ]
        }]}]
    }]});
    let r = stack
        .http
        .post(format!("{}/v1/traces", stack.gateway_url))
        .header("content-type", "application/json")
        .bearer_auth(&stack.ingest_key)
        .body(serde_json::to_vec(&otlp)?)
        .send()
        .await?;
    let status = r.status().as_u16();
    let body: Value = r.json().await?;
    let text = body.to_string();
    assert!(
        status == 400 || body["partialSuccess"]["rejectedSpans"] == 1,
        "{status} {text}"
    );
    assert!(
        text.contains("agent_id") && text.contains("control character"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_events_table_gets_the_org_in_its_key() -> Result<()> {
    let url = agentops_e2e::create_database("evkey").await?;
    let cfg = agentops_runtime::config::DatabaseConfig {
        url,
        ..Default::default()
    };
    let pool = agentops_runtime::db::connect(&cfg, Duration::from_secs(10)).await?;
    agentops_runtime::db::prepare(&pool, &cfg).await?;
    // Back to the key databases were created with before.
    let pk: String = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'p'",
    )
    .fetch_one(&pool)
    .await?;
    sqlx::raw_sql(&format!(
        "ALTER TABLE events DROP CONSTRAINT {pk}; ALTER TABLE events ADD PRIMARY KEY (event_id, ts)"
    ))
    .execute(&pool)
    .await?;
    let key = || async {
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text
             FROM pg_constraint c
             CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             WHERE c.conrelid = 'events'::regclass AND c.contype = 'p' ORDER BY k.ord",
        )
        .fetch_all(&pool)
        .await?;
        anyhow::Ok(cols)
    };
    assert_eq!(key().await?, ["event_id", "ts"]);
    agentops_runtime::db::prepare(&pool, &cfg).await?;
    assert_eq!(key().await?, ["event_id", "org_id", "ts"]);
    // Idempotent.
    agentops_runtime::db::prepare(&pool, &cfg).await?;
    assert_eq!(key().await?, ["event_id", "org_id", "ts"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_violation_the_database_refuses_does_not_stop_the_enrich_stage() -> Result<()> {
    let stack = Stack::start(
        "refused_violation",
        StackOptions {
            partitions: Some(1),
            env: vec![("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "200".into())],
            ..Default::default()
        },
    )
    .await?;
    sqlx::query(
        "INSERT INTO policies (org_id, name, kind, names, action)
         VALUES ($1, 'no-o3', 'model_denylist', '{o3}', 'flag')",
    )
    .bind(&stack.org_id)
    .execute(&stack.pool)
    .await?;
    // The test hook: the database refuses one agent's violations.
    refuse_rows_of(&stack, "policy_violations", "refused-violation").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the policy is loaded
    let at = chrono::Utc::now().to_rfc3339();
    let call = |agent: &str, run: &str| {
        json!({"event_id": events::id(), "type": "llm_call", "agent_id": agent, "run_id": run,
               "timestamp": at, "provider": "openai", "model": "o3", "input_tokens": 10})
    };
    let batch = vec![call("refused-violation", "r1"), call("ok-agent", "r2")];
    let (status, body) = post_as(&stack, &stack.ingest_key, &batch).await?;
    ensure!(status == 202, "{status} {body}");
    // Both events flow on; the allowed violation is recorded.
    for run in ["r1", "r2"] {
        stack
            .eventually(Duration::from_secs(30), "the run projected", || async {
                let n: Option<i64> =
                    sqlx::query_scalar("SELECT events FROM runs WHERE org_id = $1 AND run_id = $2")
                        .bind(&stack.org_id)
                        .bind(run)
                        .fetch_optional(&stack.pool)
                        .await?;
                Ok((n == Some(1)).then_some(()))
            })
            .await?;
    }
    let recorded: Vec<String> = sqlx::query_scalar("SELECT agent_id FROM policy_violations")
        .fetch_all(&stack.pool)
        .await?;
    assert_eq!(recorded, ["ok-agent"]);
    let refused = stack
        .metric(
            agentops_e2e::Component::Processors,
            "agentops_processor_refused_violations_total",
            "",
        )
        .await?;
    assert_eq!(refused, 1.0);
    Ok(())
}
