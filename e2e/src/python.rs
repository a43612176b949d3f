//! The e2e Python helpers (`e2e/python/*.py`, run with the venv
//! `deploy/local/lib.sh` `ensure_python_tools` makes): the interpreter, and a
//! script run whose last stdout line is its JSON result.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

/// The Python that has the helpers' packages: `AGENTOPS_TEST_PYTHON` (set
/// by deploy/local/test.sh), else the venv it creates.
pub fn python() -> Result<PathBuf> {
    let p = std::env::var("AGENTOPS_TEST_PYTHON").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-otel/bin/python"),
        PathBuf::from,
    );
    ensure!(
        p.exists(),
        "no Python with the e2e helpers at {}: run the suite through deploy/local/test.sh \
         (ensure_python_tools in deploy/local/lib.sh creates target/py-otel) or set AGENTOPS_TEST_PYTHON",
        p.display()
    );
    Ok(p)
}

/// Run `e2e/python/<script>` with `args`; its last stdout line as JSON. A
/// non-zero exit fails with both outputs.
pub async fn run_script(script: &str, args: &[&str]) -> Result<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let out = tokio::process::Command::new(python()?)
        .arg(&path)
        .args(args)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{script} {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().context("no output")?;
    serde_json::from_str(last).with_context(|| format!("{script}: last line is not JSON: {last}"))
}
