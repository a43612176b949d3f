//! Configuration is checked at start (issue 13, item 4): an unknown key and
//! a value that cannot work each stop the binary with the key named, while
//! another component's setting in a shared environment is ignored;
//! `--print-config` shows every setting with its source, credentials masked.

use std::process::Command;

use agentops_e2e::Component;
use anyhow::{ensure, Result};

/// Run `c`'s binary with `args` and only `env` among the AGENTOPS_ settings.
fn run(c: Component, args: &[&str], env: &[(&str, &str)]) -> Result<(bool, String, String)> {
    let dir = std::env::var("AGENTOPS_BIN_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug").to_owned());
    let mut cmd = Command::new(format!("{dir}/{}", c.binary()));
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTOPS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn an_unknown_key_stops_start_up_naming_it_and_the_closest_one() -> Result<()> {
    // A typo of a top-level setting, in the environment and in the file.
    let (ok, _, err) = run(
        Component::Gateway,
        &["--print-config"],
        &[("AGENTOPS_MAX_INFLIGHT", "5")],
    )?;
    ensure!(!ok, "started with AGENTOPS_MAX_INFLIGHT");
    ensure!(
        err.contains("unknown setting `max_inflight`")
            && err.contains("did you mean `max_in_flight`"),
        "{err}"
    );
    let file = std::env::temp_dir().join(format!("agentops-config-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"b:9092\"\nsesion_timeout_ms = 5000\n",
    )?;
    let path = file.to_string_lossy().into_owned();
    let (ok, _, err) = run(
        Component::Processors,
        &["--config", &path, "--print-config"],
        &[],
    )?;
    let _ = std::fs::remove_file(&file);
    ensure!(!ok, "started with a misspelt file key");
    ensure!(
        err.contains("unknown setting `kafka.sesion_timeout_ms`")
            && err.contains("did you mean `kafka.session_timeout_ms`"),
        "{err}"
    );
    // A key in a section the component has.
    let (ok, _, err) = run(
        Component::Projections,
        &["--print-config"],
        &[("AGENTOPS_KAFKA__MAX_INFLIGHT", "3")],
    )?;
    ensure!(!ok && err.contains("`kafka.max_inflight`"), "{err}");
    Ok(())
}

#[test]
fn a_zero_interval_stops_start_up_naming_the_setting() -> Result<()> {
    for (c, var, key) in [
        (
            Component::Processors,
            "AGENTOPS_BUDGET_CHECK_INTERVAL_MS",
            "budget_check_interval_ms",
        ),
        (
            Component::Processors,
            "AGENTOPS_DIGEST_CHECK_SECS",
            "digest_check_secs",
        ),
        (
            Component::Gateway,
            "AGENTOPS_MAX_IN_FLIGHT",
            "max_in_flight",
        ),
        (
            Component::Projections,
            "AGENTOPS_KAFKA__SESSION_TIMEOUT_MS",
            "kafka.session_timeout_ms",
        ),
    ] {
        let (ok, _, err) = run(c, &["--print-config"], &[(var, "0")])?;
        ensure!(!ok, "{c:?} started with {var}=0");
        ensure!(
            err.contains(&format!("`{key}`"))
                && err.contains(var)
                && err.contains("greater than 0"),
            "{c:?} {var}: {err}"
        );
    }
    Ok(())
}

#[test]
fn print_config_shows_sources_masks_credentials_and_ignores_other_components_settings() -> Result<()>
{
    let (ok, out, err) = run(
        Component::Processors,
        &["--print-config"],
        &[
            (
                "AGENTOPS_DATABASE__URL",
                "postgres://agentops:hunter2@db:5432/agentops",
            ),
            (
                "AGENTOPS_SECRETS__KEY",
                "k1:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
            ),
            ("AGENTOPS_BATCH_MAX", "500"),
            // The gateway's settings, as a shared environment hands them out.
            ("AGENTOPS_PRODUCE_TIMEOUT_MS", "3000"),
            ("AGENTOPS_MAX_BODY_BYTES", "1000"),
        ],
    )?;
    ensure!(ok, "{err}");
    ensure!(
        out.contains("batch_max = 500  # AGENTOPS_BATCH_MAX"),
        "{out}"
    );
    ensure!(
        out.contains("group = \"agentops-processors\"  # default"),
        "{out}"
    );
    ensure!(
        out.contains(
            "database.url = \"postgres://agentops:***@db:5432/agentops\"  # AGENTOPS_DATABASE__URL"
        ),
        "{out}"
    );
    ensure!(
        !out.contains("hunter2") && !out.contains("c2VjcmV0"),
        "a credential was printed: {out}"
    );
    ensure!(!out.contains("produce_timeout_ms"), "{out}");
    Ok(())
}
