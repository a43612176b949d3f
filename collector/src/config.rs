//! Configuration: defaults, then a TOML file (`--config`), then environment
//! variables `AGENTOPS_COLLECTOR_<KEY>` (e.g. `AGENTOPS_COLLECTOR_API_KEY`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::sources::{AgentKind, Source};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gateway's base URL (`/v1/events` is appended unless present).
    pub endpoint: String,
    /// An ingest key (`aok_…`); or `api_key_file`, a file holding it.
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// Where the database and the machine id live. Default
    /// `$XDG_STATE_HOME/agentops-collector`, else
    /// `~/.local/state/agentops-collector`.
    pub state_dir: Option<PathBuf>,
    /// Whose agent directories to scan (default `$HOME`).
    pub home: Option<PathBuf>,
    /// Claude Code's directory (default `<home>/.claude`; `projects/` under it).
    pub claude_dir: Option<PathBuf>,
    /// Codex's directory (default `$CODEX_HOME`, else `<home>/.codex`;
    /// `sessions/` under it).
    pub codex_dir: Option<PathBuf>,
    pub scan_interval_ms: u64,
    /// Lines older than this are not sent (the gateway refuses events past
    /// its 7-day late window): counted as `too_old` and logged.
    pub backfill_days: u64,
    /// Send truncated (≤ 1 KiB) prompt and tool-input previews, not only
    /// sizes and SHA-256 hashes.
    pub keep_content: bool,
    /// A session without new lines for this long has ended.
    pub session_idle_secs: u64,
    /// An assistant message is sent once its file has been quiet this long
    /// (its content blocks arrive as separate lines).
    pub settle_ms: u64,
    pub max_outbox_rows: u64,
    /// Events per request (≤ 1000, the gateway's cap).
    pub batch_size: usize,
    pub request_timeout_ms: u64,
    /// `hook claude-code`: the whole wait for the gateway's directives
    /// (connect + response); past it the tool call goes ahead (fail-open).
    pub hook_timeout_ms: u64,
    /// The OS machine id hashed into ours.
    pub machine_id_file: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: "http://127.0.0.1:8080".to_owned(),
            api_key: None,
            api_key_file: None,
            state_dir: None,
            home: None,
            claude_dir: None,
            codex_dir: None,
            scan_interval_ms: 2000,
            backfill_days: 7,
            keep_content: false,
            session_idle_secs: 1800,
            settle_ms: 3000,
            max_outbox_rows: 1_000_000,
            batch_size: 500,
            request_timeout_ms: 15_000,
            hook_timeout_ms: 1500,
            machine_id_file: PathBuf::from("/etc/machine-id"),
        }
    }
}

impl Config {
    /// Defaults ← `file` ← environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                bail!("config file {} not found", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(Env::prefixed("AGENTOPS_COLLECTOR_"));
        let cfg: Config = fig.extract().context("reading the configuration")?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<()> {
        if self.batch_size == 0 || self.batch_size > 1000 {
            bail!("batch_size must be 1..=1000");
        }
        if self.hook_timeout_ms == 0 {
            bail!("hook_timeout_ms must be at least 1");
        }
        if self.max_outbox_rows == 0 {
            bail!("max_outbox_rows must be at least 1");
        }
        Ok(())
    }

    fn user_home() -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }

    pub fn home_dir(&self) -> Result<PathBuf> {
        match self.home.clone().or_else(Self::user_home) {
            Some(h) => Ok(h),
            None => bail!("no home directory: set `home` or $HOME"),
        }
    }

    pub fn state_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.state_dir {
            return Ok(d.clone());
        }
        if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
            return Ok(PathBuf::from(x).join("agentops-collector"));
        }
        match Self::user_home() {
            Some(h) => Ok(h.join(".local/state/agentops-collector")),
            None => bail!("no state directory: set `state_dir`, $XDG_STATE_HOME or $HOME"),
        }
    }

    pub fn db_path(&self) -> Result<PathBuf> {
        Ok(self.state_dir()?.join("collector.db"))
    }

    /// Claude Code's directory: `claude_dir`, else `<home>/.claude`.
    pub fn claude_dir(&self) -> Result<PathBuf> {
        match &self.claude_dir {
            Some(d) => Ok(d.clone()),
            None => Ok(self.home_dir()?.join(".claude")),
        }
    }

    /// The directories scanned, one per agent.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let home = self.home_dir()?;
        let claude = self.claude_dir()?;
        let codex = self.codex_dir.clone().unwrap_or_else(|| {
            match std::env::var_os("CODEX_HOME").filter(|c| !c.is_empty() && self.home.is_none()) {
                Some(c) => PathBuf::from(c),
                None => home.join(".codex"),
            }
        });
        Ok(vec![
            Source {
                kind: AgentKind::ClaudeCode,
                root: claude.join("projects"),
            },
            Source {
                kind: AgentKind::Codex,
                root: codex.join("sessions"),
            },
        ])
    }

    /// The ingest key, from `api_key` or `api_key_file`.
    pub fn api_key(&self) -> Result<String> {
        if let Some(k) = self.api_key.as_ref().filter(|k| !k.trim().is_empty()) {
            return Ok(k.trim().to_owned());
        }
        if let Some(f) = &self.api_key_file {
            let k = std::fs::read_to_string(f)
                .with_context(|| format!("reading api_key_file {}", f.display()))?;
            let k = k.trim();
            if !k.is_empty() {
                return Ok(k.to_owned());
            }
        }
        bail!("no ingest key: set api_key or api_key_file (AGENTOPS_COLLECTOR_API_KEY)")
    }

    /// `POST` target.
    pub fn events_url(&self) -> String {
        format!("{}/v1/events", self.base_url())
    }

    /// `GET` target of the hook (`/v1/directives`, next to `/v1/events`).
    pub fn directives_url(&self) -> String {
        format!("{}/v1/directives", self.base_url())
    }

    /// The endpoint without a trailing `/` or `/v1/events`.
    fn base_url(&self) -> &str {
        let base = self.endpoint.trim_end_matches('/');
        base.strip_suffix("/v1/events").unwrap_or(base)
    }
}
