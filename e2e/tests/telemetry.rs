//! Telemetry every component exports (issue 13, item 8): consumer lag per
//! group and partition from every stage that consumes, request metrics for
//! every HTTP route with real histogram buckets.

use std::time::Duration;

use agentops_e2e::{events, Component, Stack, StackOptions};
use anyhow::{ensure, Result};

async fn metrics_text(stack: &Stack, c: Component) -> Result<String> {
    Ok(stack
        .http
        .get(stack.metrics_url(c, 0))
        .send()
        .await?
        .text()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_and_request_metrics_are_exported() -> Result<()> {
    let stack = Stack::start("telemetry", StackOptions::default()).await?;
    let (batch, _, _) = events::fleet(20, 4, 5, "tm");
    stack.send_all(&batch, 50).await?;
    let _ = stack.get("/v1/metrics/overview?window=1h").await?;
    let _ = stack.get("/v1/runs/tm-run-1").await; // a templated route

    // Lag: every consuming stage, by group, topic and partition.
    for (c, group) in [
        (Component::Processors, stack.group_of(Component::Processors)),
        (
            Component::Projections,
            stack.group_of(Component::Projections),
        ),
    ] {
        let group = group.unwrap_or_default();
        stack
            .eventually(
                Duration::from_secs(30),
                "consumer lag on /metrics",
                || async {
                    let text = metrics_text(&stack, c).await?;
                    Ok(text
                        .lines()
                        .any(|l| {
                            l.starts_with("agentops_consumer_lag{")
                                && l.contains(&format!("group=\"{group}\""))
                                && l.contains("partition=\"")
                        })
                        .then_some(()))
                },
            )
            .await?;
    }

    // Requests: route templates (never raw ids), methods, statuses, buckets.
    let gateway = metrics_text(&stack, Component::Gateway).await?;
    ensure!(
        gateway.contains("agentops_http_requests_total{")
            && gateway.contains("route=\"/v1/events\"")
            && gateway.contains("status=\"202\""),
        "gateway request metrics missing"
    );
    let query = metrics_text(&stack, Component::QueryApi).await?;
    ensure!(
        query.contains("route=\"/v1/metrics/overview\"")
            && query.contains("route=\"/v1/runs/{run_id}\""),
        "query API request metrics missing"
    );
    ensure!(!query.contains("tm-run-1"), "a raw id became a label");
    ensure!(
        query.contains("agentops_http_request_duration_seconds_bucket{")
            && query.contains("le=\"0.005\""),
        "request latency is not a histogram with buckets"
    );
    Ok(())
}
