//! Workspace and project of a session's working directory, from the files
//! git keeps (no git binary needed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a session ran and which project it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// Normalized remote (`github.com/acme/repo`), else `local:<dir name>`.
    pub project: String,
    /// `https://<normalized remote>` when there is a remote.
    pub project_url: Option<String>,
    /// Hashed id of (machine, workspace path).
    pub workspace: String,
    /// The git root on this machine (or the cwd outside any repository).
    pub workspace_path: String,
}

/// The git root of `cwd` (walking up to a `.git` directory, or a `.git`
/// file for worktrees and submodules) and the directory holding its config.
pub fn git_root(cwd: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let dot = d.join(".git");
        if let Ok(meta) = std::fs::metadata(&dot) {
            if meta.is_dir() {
                return Some((d.to_path_buf(), dot));
            }
            if meta.is_file() {
                let text = std::fs::read_to_string(&dot).ok()?;
                let gitdir = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("gitdir:"))
                    .map(str::trim)?;
                let gitdir = d.join(gitdir);
                // A worktree's config is in the common dir.
                let common = std::fs::read_to_string(gitdir.join("commondir"))
                    .ok()
                    .map(|c| gitdir.join(c.trim()))
                    .unwrap_or(gitdir);
                return Some((d.to_path_buf(), common));
            }
        }
        dir = d.parent();
    }
    None
}

/// The URL of remote `origin` in a git config text, else of the first remote.
pub fn origin_url(config: &str) -> Option<String> {
    let mut section: Option<String> = None;
    let mut first: Option<String> = None;
    for raw in config.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[').split(']').next().unwrap_or("");
            let mut parts = inner.splitn(2, char::is_whitespace);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let sub = parts
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_owned();
            section = (name == "remote").then_some(sub);
            continue;
        }
        let Some(remote) = &section else { continue };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("url") {
            continue;
        }
        let value = value.trim().trim_matches('"').to_owned();
        if remote == "origin" {
            return Some(value);
        }
        if first.is_none() {
            first = Some(value);
        }
    }
    first
}

/// `git@github.com:Acme/Repo.git`, `https://user:token@github.com/acme/repo`,
/// `ssh://git@github.com:22/acme/repo.git` → `github.com/acme/repo`: no
/// scheme, credentials, default port or `.git`, host and path lowercased.
/// Local paths (`/srv/repo.git`, `file://…`) have no project URL: `None`.
pub fn normalize_remote(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, url),
    };
    let (authority, path) = match scheme.as_deref() {
        Some("file") => return None,
        Some(_) => match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        },
        None => {
            // scp-like `user@host:path`; a colon after a slash is a path.
            let colon = rest.find(':')?;
            if rest[..colon].contains('/') || colon == 0 {
                return None;
            }
            // A Windows drive (`C:\repo`) is a path too.
            if colon == 1 && rest[..1].chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            (&rest[..colon], &rest[colon + 1..])
        }
    };
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.is_empty() {
        return None;
    }
    let keep_port = match (scheme.as_deref(), port) {
        (_, None) => None,
        (Some("https"), Some("443")) | (Some("http"), Some("80")) => None,
        (Some("ssh") | Some("git+ssh") | Some("ssh+git") | Some("git") | None, _) => None,
        (_, Some(p)) => Some(p),
    };
    let mut path: String = path
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/");
    if let Some(p) = path.strip_suffix(".git") {
        path = p.to_owned();
    }
    let path = path.trim_matches('/').to_ascii_lowercase();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let mut out = host;
    if let Some(p) = keep_port {
        out.push(':');
        out.push_str(p);
    }
    if !path.is_empty() {
        out.push('/');
        out.push_str(&path);
    }
    Some(out)
}

/// The place of a session that ran in `cwd` on `machine_id`. `hint_remote`
/// is a remote URL the agent recorded itself (Codex `git.repository_url`),
/// used when the directory has no readable remote (deleted since, say).
pub fn place_of(machine_id: &str, cwd: &str, hint_remote: Option<&str>) -> Place {
    let cwd_path = Path::new(cwd);
    let (root, remote) = match git_root(cwd_path) {
        Some((root, gitdir)) => {
            let remote = std::fs::read_to_string(gitdir.join("config"))
                .ok()
                .and_then(|c| origin_url(&c))
                .and_then(|u| normalize_remote(&u));
            (root, remote)
        }
        None => (cwd_path.to_path_buf(), None),
    };
    let remote = remote.or_else(|| hint_remote.and_then(normalize_remote));
    let root_str = root.to_string_lossy().into_owned();
    let project = match &remote {
        Some(r) => r.clone(),
        None => {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "root".to_owned());
            format!("local:{name}")
        }
    };
    let mut h = Sha256::new();
    h.update(machine_id.as_bytes());
    h.update([0u8]);
    h.update(root_str.as_bytes());
    let workspace = hex::encode(&h.finalize()[..8]);
    Place {
        project,
        project_url: remote.map(|r| format!("https://{r}")),
        workspace,
        workspace_path: root_str,
    }
}
