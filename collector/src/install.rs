//! `install` / `uninstall`: a systemd user unit where systemd runs, else the
//! command to run in the foreground.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub const UNIT_NAME: &str = "agentops-collector.service";

/// The unit file's text.
pub fn unit_text(exe: &Path, config: Option<&Path>) -> String {
    let mut exec = format!("{} run", quote(exe));
    if let Some(c) = config {
        exec.push_str(&format!(" --config {}", quote(c)));
    }
    format!(
        "[Unit]
Description=AgentOps collector: coding-agent sessions to AgentOps
After=network-online.target

[Service]
Type=simple
ExecStart={exec}
Restart=always
RestartSec=5
# Idle most of the time: keep it out of the way.
Nice=10
IOSchedulingClass=idle
MemoryMax=256M

[Install]
WantedBy=default.target
"
    )
}

fn quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.into_owned()
    }
}

pub fn unit_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => bail!("no $HOME"),
        },
    };
    Ok(base.join("systemd/user").join(UNIT_NAME))
}

/// Is a systemd user manager reachable?
pub fn systemd_available() -> bool {
    Path::new("/run/systemd/system").is_dir()
        && Command::new("systemctl")
            .args(["--user", "show-environment"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

fn systemctl(args: &[&str]) -> Result<()> {
    let st = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()
        .with_context(|| format!("running systemctl --user {}", args.join(" ")))?;
    if !st.success() {
        bail!("systemctl --user {} failed ({st})", args.join(" "));
    }
    Ok(())
}

pub fn install(config: Option<&Path>, dry_run: bool) -> Result<()> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let config = config.map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.to_path_buf()));
    let unit = unit_text(&exe, config.as_deref());
    let path = unit_path()?;
    if dry_run {
        println!("# {}", path.display());
        print!("{unit}");
        return Ok(());
    }
    if !systemd_available() {
        println!("systemd (user) is not available here. Run the collector in the foreground:");
        let mut cmd = format!("  {} run", quote(&exe));
        if let Some(c) = &config {
            cmd.push_str(&format!(" --config {}", quote(c)));
        }
        println!("{cmd}");
        println!(
            "(for example under nohup, tmux or your init system; it resumes where it stopped)"
        );
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, unit).with_context(|| format!("writing {}", path.display()))?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])?;
    println!("installed and started {} ({})", UNIT_NAME, path.display());
    println!("logs: journalctl --user -u {UNIT_NAME} -f; state: agentops-collector status");
    Ok(())
}

pub fn uninstall(dry_run: bool) -> Result<()> {
    let path = unit_path()?;
    if dry_run {
        println!(
            "would stop and disable {UNIT_NAME} and remove {}",
            path.display()
        );
        return Ok(());
    }
    if systemd_available() {
        // Not installed is fine.
        let _ = systemctl(&["disable", "--now", UNIT_NAME]);
    }
    if path.exists() {
        std::fs::remove_file(&path)?;
        if systemd_available() {
            systemctl(&["daemon-reload"])?;
        }
        println!("removed {}", path.display());
    } else {
        println!("{} was not installed", path.display());
    }
    println!("the state directory (queued events, checkpoints) is kept");
    Ok(())
}
