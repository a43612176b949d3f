//! `POST /v1/traces` through the whole pipeline: the real OpenTelemetry
//! Python SDK and its OTLP/HTTP exporter (`e2e/python/otel_genai.py`, in
//! the venv `deploy/local/lib.sh` `ensure_python_otel` makes) sending GenAI
//! spans of agent runs; OTLP/JSON over reqwest (a run split over two
//! requests, a re-exported span deduplicated, ignored and rejected spans);
//! protobuf answers; undecodable bodies, media types and scopes.

use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Component, Stack, StackOptions};
use agentops_schemas::otlp::{self, ExportTraceServiceResponse, Format};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Run e2e/python/otel_genai.py against the stack; returns the trace id.
async fn python_run(stack: &Stack, key: &str, extra: &[&str]) -> Result<String> {
    let endpoint = format!("{}/v1/traces", stack.gateway_url);
    let mut args = vec!["--endpoint", &endpoint, "--key", key];
    args.extend_from_slice(extra);
    let line = run_script("otel_genai.py", &args).await?;
    Ok(line["trace_id"].as_str().context("trace_id")?.to_owned())
}

/// The run once it has `events` events and its terminal event.
async fn finished_run(stack: &Stack, run: &str, events: i64) -> Result<Value> {
    stack
        .eventually(Duration::from_secs(60), "run projected", || async {
            let r = stack.get(&format!("/v1/runs/{run}")).await.ok();
            Ok(r.filter(|r| r["event_count"] == json!(events) && r["status"] != "running"))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_runs_are_priced_through_the_pipeline() -> Result<()> {
    let stack = Stack::start("otlp_sdk", StackOptions::default()).await?;
    let trace = python_run(&stack, &stack.ingest_key, &[]).await?;
    ensure!(trace.len() == 32, "{trace}");

    // run_started, two llm_calls, one tool_call, run_completed; the HTTP span ignored.
    let run = finished_run(&stack, &trace, 5).await?;
    ensure!(run["status"] == "completed", "{run}");
    ensure!(run["agent_id"] == "research-agent-id", "{run}");
    ensure!(run["llm_calls"] == 2 && run["tool_calls"] == 1, "{run}");
    ensure!(run["latency_ms"].as_i64().unwrap_or(0) >= 50, "{run}");
    // OTel input tokens include the cached ones; the contract counts them apart.
    let tokens = [
        ("input_tokens", 10_000 + 2_000),
        ("cache_read_tokens", 2_000 + 1_000),
        ("cache_write_tokens", 2_000),
        ("output_tokens", 800 + 400),
        ("reasoning_tokens", 0),
    ];
    for (field, want) in tokens {
        ensure!(run[field] == json!(want), "{field}: {run}");
    }
    // processors/prices.toml, USD per million tokens.
    // gpt-4o: 10,000 x 2.50 + 2,000 cached x 1.25 + 800 x 10.00
    let gpt = 0.025 + 0.0025 + 0.008;
    // claude-haiku-4-5: 2,000 x 1.00 + 1,000 x 0.10 + 2,000 writes x 1.25 + 400 x 5.00
    let claude = 0.002 + 0.0001 + 0.0025 + 0.002;
    ensure!(
        close(run["cost_usd"].as_f64().unwrap_or(-1.0), gpt + claude),
        "cost {}, want {}",
        run["cost_usd"],
        gpt + claude
    );
    let timeline = run["events"].as_array().context("timeline")?;
    let types: Vec<&str> = timeline.iter().filter_map(|e| e["type"].as_str()).collect();
    ensure!(
        types
            == [
                "run_started",
                "llm_call",
                "tool_call",
                "llm_call",
                "run_completed"
            ],
        "{types:?}"
    );
    for (e, cost) in [(&timeline[1], gpt), (&timeline[3], claude)] {
        ensure!(e["cost_source"] == "computed", "{e}");
        ensure!(close(e["cost_usd"].as_f64().unwrap_or(-1.0), cost), "{e}");
    }
    ensure!(
        timeline[1]["model"] == "gpt-4o-2024-08-06",
        "{}",
        timeline[1]
    );
    ensure!(timeline[2]["tool_name"] == "web_search", "{}", timeline[2]);

    // Drill-down ids and attributes are kept on every event.
    let rows: Vec<(String, String, String, Option<String>, Value)> = sqlx::query_as(
        "SELECT type, agent_id, trace_id, span_id, attributes FROM events
         WHERE run_id = $1 ORDER BY ts",
    )
    .bind(&trace)
    .fetch_all(&stack.pool)
    .await?;
    ensure!(rows.len() == 5);
    for (ty, agent, trace_id, span_id, attrs) in &rows {
        ensure!(agent == "research-agent-id", "{ty}: {agent}");
        ensure!(trace_id == &trace, "{ty}: {trace_id}");
        ensure!(span_id.as_ref().is_some_and(|s| s.len() == 16), "{ty}");
        ensure!(attrs["service.name"] == "otel-e2e-service", "{ty}: {attrs}");
        let child = !ty.starts_with("run_");
        ensure!(
            attrs["otel.parent_span_id"].is_string() == child,
            "{ty}: {attrs}"
        );
    }
    ensure!(
        rows[0].4["gen_ai.conversation.id"] == "conv-e2e-1",
        "{}",
        rows[0].4
    );
    ensure!(
        rows[1].4["gen_ai.response.finish_reasons"] == "[\"tool_calls\"]",
        "{}",
        rows[1].4
    );

    // Gateway metrics: 5 spans, 4 mapped, the HTTP span ignored.
    for (name, want) in [
        ("agentops_gateway_otlp_spans_received_total", 5.0),
        ("agentops_gateway_otlp_spans_mapped_total", 4.0),
        ("agentops_gateway_otlp_spans_ignored_total", 1.0),
        ("agentops_gateway_otlp_spans_rejected_total", 0.0),
    ] {
        let got = stack.metric(Component::Gateway, name, "").await?;
        ensure!(got == want, "{name} = {got}, want {want}");
    }

    // A tool that raises: the tool call and the run fail, with the exception.
    let failed = python_run(&stack, &stack.ingest_key, &["--fail", "--agent", "fragile"]).await?;
    let run = finished_run(&stack, &failed, 4).await?;
    ensure!(run["status"] == "failed", "{run}");
    ensure!(run["agent_id"] == "fragile-id", "{run}");
    ensure!(run["error_type"] == "RuntimeError", "{run}");
    ensure!(
        run["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("search backend is down")),
        "{run}"
    );
    ensure!(run["llm_calls"] == 1 && run["tool_calls"] == 1, "{run}");
    let (status,): (Option<String>,) =
        sqlx::query_as("SELECT status FROM events WHERE run_id = $1 AND type = 'tool_call'")
            .bind(&failed)
            .fetch_one(&stack.pool)
            .await?;
    ensure!(status.as_deref() == Some("error"));

    // A read key may not export traces (the exporter reports the failure).
    let err = python_run(&stack, &stack.read_key, &[]).await.unwrap_err();
    ensure!(format!("{err:#}").contains("FAILURE"), "{err:#}");
    Ok(())
}

/// An OTLP/JSON span as the JS exporter writes it (times as strings).
fn json_span(
    trace: &str,
    id: &str,
    parent: &str,
    name: &str,
    start: i64,
    end: i64,
    attrs: Value,
) -> Value {
    let attributes: Vec<Value> = attrs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => json!({"stringValue": s}),
                Value::Number(n) => json!({"intValue": n.to_string()}),
                other => json!({"stringValue": other.to_string()}),
            };
            json!({"key": k, "value": value})
        })
        .collect();
    json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": name, "kind": 1,
           "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
           "attributes": attributes, "droppedAttributesCount": 0, "events": [],
           "droppedEventsCount": 0, "status": {"code": 0}, "links": [], "droppedLinksCount": 0})
}

fn json_request(spans: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
        "scopeSpans": [{"scope": {"name": "e2e"}, "spans": spans}]
    }]}))
    .unwrap()
}

async fn post(
    stack: &Stack,
    content_type: &str,
    key: &str,
    body: Vec<u8>,
) -> Result<reqwest::Response> {
    Ok(stack
        .http
        .post(format!("{}/v1/traces", stack.gateway_url))
        .header("content-type", content_type)
        .bearer_auth(key)
        .body(body)
        .send()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_runs_across_requests_and_errors() -> Result<()> {
    let stack = Stack::start("otlp_json", StackOptions::default()).await?;
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let now = chrono::Utc::now().timestamp_nanos_opt().context("now")? - 60_000_000_000;
    let ms = |n: i64| now + n * 1_000_000;
    let chat = json_span(
        &trace,
        "00000000000000c1",
        "00000000000000a1",
        "chat gpt-4o",
        ms(100),
        ms(900),
        json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
               "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
               "gen_ai.usage.output_tokens": 100}),
    );
    let http = json_span(
        &trace,
        "00000000000000d1",
        "00000000000000c1",
        "POST /chat",
        ms(110),
        ms(890),
        json!({"http.request.method": "POST"}),
    );
    // The child ends first and is exported first, without its agent span.
    let first = json_request(vec![chat, http]);
    let r = post(&stack, "application/json", &stack.ingest_key, first.clone()).await?;
    ensure!(r.status() == 200, "{} {}", r.status(), r.text().await?);
    ensure!(r.headers()["content-type"] == "application/json");
    let body: Value = r.json().await?;
    ensure!(body["partialSuccess"]["rejectedSpans"] == 0, "{body}");
    ensure!(
        body["partialSuccess"]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("1 of 2 spans ignored")),
        "{body}"
    );
    // Re-exported (an exporter retry): the same event ids, deduplicated downstream.
    let r = post(&stack, "application/json", &stack.ingest_key, first).await?;
    ensure!(r.status() == 200);

    // The agent span in a later request, with a span too old to accept, as protobuf.
    let root = json_span(
        &trace,
        "00000000000000a1",
        "",
        "invoke_agent json-agent",
        ms(0),
        ms(1000),
        json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "json-agent"}),
    );
    let old = json_span(
        &trace,
        "00000000000000e1",
        "00000000000000a1",
        "chat old",
        1_000_000_000,
        2_000_000_000,
        json!({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}),
    );
    let request = otlp::decode(&json_request(vec![root, old]), Format::Json)?;
    let r = post(
        &stack,
        "application/x-protobuf",
        &stack.ingest_key,
        prost::Message::encode_to_vec(&request),
    )
    .await?;
    ensure!(r.status() == 200, "{}", r.status());
    ensure!(r.headers()["content-type"] == "application/x-protobuf");
    let answer: ExportTraceServiceResponse = prost::Message::decode(r.bytes().await?)?;
    let partial = answer.partial_success.context("partial_success")?;
    ensure!(partial.rejected_spans == 1, "{partial:?}");
    ensure!(
        partial.error_message.contains("span 1: field `timestamp`"),
        "{partial:?}"
    );

    let run = finished_run(&stack, &trace, 3).await?;
    ensure!(
        run["status"] == "completed" && run["agent_id"] == "json-agent",
        "{run}"
    );
    ensure!(
        run["llm_calls"] == 1 && run["input_tokens"] == 1000,
        "{run}"
    );
    // gpt-4o: 1,000 x 2.50 + 100 x 10.00 per million.
    ensure!(
        close(run["cost_usd"].as_f64().unwrap_or(-1.0), 0.0035),
        "{run}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = $1")
        .bind(&trace)
        .fetch_one(&stack.pool)
        .await?;
    ensure!(rows == 3, "{rows} event rows");

    // Errors keep the gateway's JSON body.
    let error = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: Value = r.json().await?;
        anyhow::Ok((
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    };
    let cases = [
        (
            "application/x-protobuf",
            stack.ingest_key.clone(),
            b"\xff\xff\xff\xff not protobuf".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "application/json",
            stack.ingest_key.clone(),
            b"{\"resourceSpans\": [".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "text/plain",
            stack.ingest_key.clone(),
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-protobuf",
            stack.read_key.clone(),
            Vec::new(),
            403,
            "forbidden",
        ),
        (
            "application/x-protobuf",
            "aok_00000000_nope".to_owned(),
            Vec::new(),
            401,
            "invalid_api_key",
        ),
    ];
    for (ct, key, body, status, code) in cases {
        let got = error(post(&stack, ct, &key, body).await?).await?;
        ensure!(
            got == (status, code.to_owned()),
            "{ct}: {got:?}, want {status} {code}"
        );
    }
    Ok(())
}
