//! The SDKs against the real pipeline (issue 16, item 3): the Python
//! (`sdks/python`) and TypeScript (`sdks/typescript`) integration suites run
//! against a stack of this test (gateway, Kafka, processors, projections,
//! query API) through the variables below; they fail, not skip, when one is
//! missing (`AGENTOPS_IT_REQUIRED=1`).
//!
//! - `AGENTOPS_IT_GATEWAY`, `AGENTOPS_IT_QUERY`: the services' base URLs;
//! - `AGENTOPS_IT_INGEST_KEY`, `AGENTOPS_IT_READ_KEY`, `AGENTOPS_IT_ADMIN_KEY`;
//! - `AGENTOPS_IT_PLATFORM_KEY`: a platform admin (of another org), with
//!   which a suite makes an org of a low rate limit and meets the gateway's
//!   own 429 `rate_limited`.
//!
//! The Python comes from `AGENTOPS_SDK_PYTHON` (deploy/local/test.sh makes a
//! venv with the SDK and its test tools), the TypeScript package must be
//! built (`npm ci && npm run build` in sdks/typescript, done by test.sh).
//!
//! `hold_stack_for_sdk_development` (ignored) keeps a stack up and writes the
//! variables to `AGENTOPS_HOLD_ENV_FILE` (default /tmp/sdkstack.env) for
//! working on the SDKs by hand; it stops when the file is deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Context, Result};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn sdk_stack(name: &str) -> Result<Stack> {
    Stack::start(
        name,
        StackOptions {
            // A pause reaches the gateway's answers within a fraction of a second.
            env: vec![("AGENTOPS_DIRECTIVE_CACHE_TTL_MS".into(), "200".into())],
            ..Default::default()
        },
    )
    .await
}

/// A platform org's admin key (so the suites can give a new org a low rate
/// limit and meet the gateway's own 429s).
async fn platform_key(stack: &Stack) -> Result<String> {
    let id = format!("{}-platform", stack.org_id);
    let keys =
        agentops_query_api::admin::provision_org(&stack.pool, &id, "SDK platform", true, "e2e")
            .await?;
    Ok(keys[2].secret.clone())
}

fn it_env(stack: &Stack, platform: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AGENTOPS_IT_PLATFORM_KEY", platform.to_owned()),
        ("AGENTOPS_IT_GATEWAY", stack.gateway_url.clone()),
        ("AGENTOPS_IT_QUERY", stack.query_url.clone()),
        ("AGENTOPS_IT_INGEST_KEY", stack.ingest_key.clone()),
        ("AGENTOPS_IT_READ_KEY", stack.read_key.clone()),
        ("AGENTOPS_IT_ADMIN_KEY", stack.admin_key.clone()),
        ("AGENTOPS_IT_REQUIRED", "1".into()),
    ]
}

/// Run `program args` in `dir` with the stack's variables; its output on failure.
async fn run_suite(stack: &Stack, dir: &Path, program: &Path, args: &[&str]) -> Result<()> {
    let platform = platform_key(stack).await?;
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(it_env(stack, &platform))
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    ensure!(
        out.status.success(),
        "{} {args:?} in {}: {}\n--- stdout\n{}\n--- stderr\n{}",
        program.display(),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_against_the_pipeline() -> Result<()> {
    let python = std::env::var("AGENTOPS_SDK_PYTHON")
        .map_or_else(|_| repo().join("target/py-sdk/bin/python"), PathBuf::from);
    ensure!(
        python.exists(),
        "no Python with the SDK at {}: run the suite through deploy/local/test.sh or set AGENTOPS_SDK_PYTHON",
        python.display()
    );
    let stack = sdk_stack("sdk_python").await?;
    let dir = repo().join("sdks/python");
    run_suite(
        &stack,
        &dir,
        &python,
        &[
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/integration",
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_against_the_pipeline() -> Result<()> {
    let dir = repo().join("sdks/typescript");
    ensure!(
        dir.join("node_modules").exists(),
        "sdks/typescript has no node_modules: run the suite through deploy/local/test.sh \
         (npm ci && npm run build there)"
    );
    let stack = sdk_stack("sdk_typescript").await?;
    run_suite(
        &stack,
        &dir,
        Path::new("npm"),
        &["run", "--silent", "test:integration"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "keeps a stack up for SDK development; run by hand"]
async fn hold_stack_for_sdk_development() -> Result<()> {
    let stack = sdk_stack("sdk_dev").await?;
    let file = std::env::var("AGENTOPS_HOLD_ENV_FILE").unwrap_or("/tmp/sdkstack.env".into());
    let platform = platform_key(&stack).await?;
    let vars: String = it_env(&stack, &platform)
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect();
    std::fs::write(&file, vars)?;
    eprintln!("stack up; variables in {file}; delete it to stop");
    while Path::new(&file).exists() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
