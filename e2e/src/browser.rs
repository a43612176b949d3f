//! The headless-Chromium tests in `deploy/local/browser/` (node:test with
//! playwright-core), run against a stack.

use anyhow::{ensure, Result};

/// Run `deploy/local/browser/<script>` with `env`, failing with its TAP
/// output unless every test passed.
pub async fn run_browser_test(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/browser");
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=tap", script])
        .current_dir(&dir)
        .envs(env.iter().copied())
        .output()
        .await?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.status.success(), "browser test failed:\n{text}");
    ensure!(text.contains("# fail 0"), "{text}");
    Ok(())
}
