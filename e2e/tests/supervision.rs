//! Task supervision (`agentops_runtime::supervise`), through the debug-build
//! test hook `AGENTOPS_TEST_PANIC_TASK` (one panic of the named task).
//!
//! - The notifier is critical: its panic takes the processors down, non-zero,
//!   with a log line naming it.
//! - The digest is restarted in-process: its panic is counted, the task runs
//!   again, the process stays up, and SIGTERM still drains it to exit 0.

use std::time::Duration;

use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Result};

fn only_processors(env: Vec<(String, String)>) -> StackOptions {
    StackOptions {
        env,
        skip: vec![
            Component::Gateway,
            Component::Projections,
            Component::QueryApi,
        ],
        ..Default::default()
    }
}

fn hook(task: &str, after_ms: u64) -> Vec<(String, String)> {
    vec![
        ("AGENTOPS_TEST_PANIC_TASK".into(), task.into()),
        ("AGENTOPS_TEST_PANIC_AFTER_MS".into(), after_ms.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_panic_takes_the_processors_down_non_zero() -> Result<()> {
    // Well after the process is healthy (Stack::start waits for it).
    let mut stack = Stack::start("supnotify", only_processors(hook("notifier", 3_000))).await?;
    let status = stack
        .exited(Component::Processors, 0, Duration::from_secs(60))
        .await?;
    let log = stack.log(Component::Processors, 0)?;
    ensure!(
        !status.success(),
        "exited {status}, expected a failure; log:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("critical task failed"))
        .unwrap_or_default();
    ensure!(
        line.contains(r#""task":"notifier""#) && line.contains(r#""kind":"panic""#),
        "no failure line naming the notifier's panic; log:\n{log}"
    );
    // The other tasks were drained, not cut off.
    for task in ["enrich", "budget", "http"] {
        ensure!(
            log.contains(&format!(r#""message":"task stopped","task":"{task}""#)),
            "{task} not drained; log:\n{log}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_panic_restarts_the_task_and_the_process_stays_up() -> Result<()> {
    let mut env = hook("digest", 500);
    env.push(("AGENTOPS_DIGEST_CHECK_SECS".into(), "1".into()));
    let mut stack = Stack::start("supdigest", only_processors(env)).await?;
    let labels = r#"task="digest""#;
    stack
        .eventually(Duration::from_secs(30), "the digest restarted", || async {
            let restarts = stack
                .metric(
                    Component::Processors,
                    "agentops_task_restarts_total",
                    labels,
                )
                .await?;
            Ok((restarts >= 1.0).then_some(()))
        })
        .await?;
    let failures = stack
        .metric(
            Component::Processors,
            "agentops_task_failures_total",
            labels,
        )
        .await?;
    ensure!(failures == 1.0, "digest failures counted: {failures}");
    let panics = stack
        .metric(
            Component::Processors,
            "agentops_task_failures_total",
            r#"kind="panic""#, // only the digest is hooked
        )
        .await?;
    ensure!(panics == 1.0, "digest panics counted: {panics}");
    let log = stack.log(Component::Processors, 0)?;
    ensure!(
        log.lines()
            .any(|l| l.contains("task failed; restarting it") && l.contains(r#""task":"digest""#)),
        "no restart line naming the digest; log:\n{log}"
    );
    // Still serving, and SIGTERM drains every task (the restarted one too).
    stack.wait_healthy(Component::Processors, 0).await?;
    let status = stack.terminate(Component::Processors, 0)?;
    let log = stack.log(Component::Processors, 0)?;
    ensure!(status.success(), "exited {status} on SIGTERM; log:\n{log}");
    ensure!(
        log.contains(r#""message":"task stopped","task":"digest""#),
        "the restarted digest was not drained; log:\n{log}"
    );
    Ok(())
}
