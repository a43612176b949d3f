//! This machine: a stable id, its name and OS.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Salt of the machine id hash: the OS's machine id never leaves the host.
const SALT: &str = "agentops-collector/machine-id/v1:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// 32 hex characters, stable across restarts and reinstalls.
    pub id: String,
    pub name: String,
    pub os: String,
}

/// `machine_id_file` is normally `/etc/machine-id`; without it a random id
/// is kept in `state_dir/machine-id`.
pub fn detect(state_dir: &Path, machine_id_file: &Path) -> Result<Machine> {
    let id = match std::fs::read_to_string(machine_id_file)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    {
        Some(os_id) => hex::encode(&Sha256::digest(format!("{SALT}{os_id}").as_bytes())[..16]),
        None => {
            let path = state_dir.join("machine-id");
            match read_kept(&path) {
                Some(id) => id,
                None => create_kept(&path)?,
            }
        }
    };
    Ok(Machine {
        id,
        name: hostname(),
        os: os_name(),
    })
}

fn read_kept(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A new random id at `path`. The collector and a Claude Code hook (several
/// at once) may start together on a fresh machine: the id is written to a
/// temporary file and published with a hard link, which never replaces, so
/// the first one wins and the others read it. A file that holds no valid id
/// is replaced.
fn create_kept(path: &Path) -> Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = path.with_file_name(format!("machine-id.{id}.tmp"));
    std::fs::write(&tmp, format!("{id}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    let published = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_kept(path) {
            Some(theirs) => Ok(theirs),
            None => std::fs::rename(&tmp, path).map(|()| id),
        },
        // No hard links on this file system: a plain rename.
        Err(_) => std::fs::rename(&tmp, path).map(|()| id),
    };
    let _ = std::fs::remove_file(&tmp);
    published.with_context(|| format!("writing {}", path.display()))
}

fn hostname() -> String {
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(path) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_owned();
            }
        }
    }
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(s) = std::env::var(var) {
            if !s.is_empty() {
                return s;
            }
        }
    }
    std::process::Command::new("hostname")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn os_name() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim().trim_matches('"').to_owned())
        });
    match pretty {
        Some(p) if !p.is_empty() => format!("{} ({p})", std::env::consts::OS),
        _ => std::env::consts::OS.to_owned(),
    }
}
