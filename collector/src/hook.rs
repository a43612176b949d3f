//! `hook claude-code`: Claude Code's `PreToolUse` hook. Before a tool runs,
//! asks the gateway for the session's directives and denies the call when a
//! budget paused (or stopped) the session, its project, workspace, machine
//! or agent. Fail-open: whatever goes wrong (no config, gateway unreachable,
//! slow, a non-200, a bad answer) the tool call goes ahead, with one line on
//! stderr and in `{state_dir}/hook.log`.
//!
//! Claude Code's hook contract (<https://code.claude.com/docs/en/hooks>,
//! "PreToolUse" and "JSON output"): the hook gets one JSON object on stdin
//! (`session_id`, `transcript_path`, `cwd`, `permission_mode`,
//! `hook_event_name`, `tool_name`, `tool_input`, `tool_use_id`); exit 0 with
//! no output lets the normal permission flow decide; exit 0 with
//! `{"hookSpecificOutput": {"hookEventName": "PreToolUse",
//! "permissionDecision": "deny", "permissionDecisionReason": …}}` on stdout
//! denies the call (the reason is shown to Claude) and `systemMessage` is
//! shown to the user. Exit 2 would block too (stderr fed to Claude), which is
//! why this never exits 2: every failure is exit 0.
//!
//! It reads no transcript and does not touch the SQLite state: only the
//! configuration, the machine id and the working directory's `.git`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Config;
use crate::event::id_part;
use crate::git::place_of;
use crate::machine::Machine;
use crate::sources::AgentKind;

/// The log of the hook's failures and denials, in the state dir.
pub const LOG_FILE: &str = "hook.log";
/// Past this the log is moved to `hook.log.1` (one generation kept).
const MAX_LOG_BYTES: u64 = 1 << 20;
/// Hook input larger than this is not read to the end (a `Write` of a big
/// file): the call goes ahead.
const MAX_INPUT_BYTES: u64 = 64 << 20;
/// A directives answer larger than this is a bad answer.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// A directive's reason is cut to this many characters in the message.
const MAX_REASON_CHARS: usize = 500;

/// What Claude Code sends on stdin (the fields used; others ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HookInput {
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub hook_event_name: Option<String>,
    pub tool_name: Option<String>,
}

/// One directive of `GET /v1/directives`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Directive {
    /// `agent`, `project`, `machine`, `workspace` or `session`.
    pub scope: String,
    pub id: String,
    /// `pause` or `kill`.
    pub action: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    directives: Vec<Directive>,
}

/// The hierarchy of a session, as the mapper puts it on its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub agent_id: String,
    pub project_id: String,
    pub machine_id: String,
    pub workspace_id: String,
    pub session_id: Option<String>,
}

impl Hierarchy {
    /// Claude Code session `session` running in `cwd` on `machine`: the
    /// same place (`git::place_of`, no remote hint) and the same id
    /// cleaning (`id_part`) as `Mapper::base`.
    pub fn claude_code(machine: &Machine, cwd: &str, session: Option<&str>) -> Hierarchy {
        let place = place_of(&machine.id, cwd, None);
        Hierarchy {
            agent_id: AgentKind::ClaudeCode.as_str().to_owned(),
            project_id: id_part(&place.project),
            machine_id: id_part(&machine.id),
            workspace_id: id_part(&place.workspace),
            session_id: session.filter(|s| !s.is_empty()).map(id_part),
        }
    }

    /// `GET {base}/v1/directives?agent_id=…&project_id=…&machine_id=…&workspace_id=…&session_id=…`.
    pub fn url(&self, directives_url: &str) -> Result<reqwest::Url, String> {
        let mut params = vec![
            ("agent_id", self.agent_id.as_str()),
            ("project_id", self.project_id.as_str()),
            ("machine_id", self.machine_id.as_str()),
            ("workspace_id", self.workspace_id.as_str()),
        ];
        if let Some(s) = &self.session_id {
            params.push(("session_id", s.as_str()));
        }
        reqwest::Url::parse_with_params(directives_url, &params)
            .map_err(|e| format!("bad endpoint {directives_url:?}: {e}"))
    }
}

/// The directives of a 200 answer's body.
pub fn parse_answer(body: &[u8]) -> Result<Vec<Directive>, String> {
    serde_json::from_slice::<Answer>(body)
        .map(|a| a.directives)
        .map_err(|e| format!("bad answer ({e})"))
}

/// The directives that stop a tool call (`pause`, `kill`), without repeats.
/// Other actions (a newer gateway's) do not.
pub fn blocking(directives: &[Directive]) -> Vec<&Directive> {
    let mut out: Vec<&Directive> = Vec::new();
    for d in directives {
        if matches!(d.action.as_str(), "pause" | "kill") && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn clean_text(s: &str, max_chars: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    one_line.trim().to_owned()
}

/// `AgentOps: project github.com/acme/shop is paused: budget 'shop' reached
/// 100%. Ask your platform team or resume it in the AgentOps console.`
pub fn deny_message(blocking: &[&Directive]) -> String {
    let parts: Vec<String> = blocking
        .iter()
        .map(|d| {
            let state = if d.action == "kill" {
                "stopped"
            } else {
                "paused"
            };
            let what = format!("{} {} is {state}", id_part(&d.scope), id_part(&d.id));
            let reason = clean_text(d.reason.as_deref().unwrap_or(""), MAX_REASON_CHARS);
            let reason = reason.trim_end_matches('.');
            if reason.is_empty() {
                what
            } else {
                format!("{what}: {reason}")
            }
        })
        .collect();
    format!(
        "AgentOps: {}. Ask your platform team or resume it in the AgentOps console.",
        parts.join("; ")
    )
}

/// The stdout of a denial.
pub fn deny_output(message: &str) -> String {
    serde_json::json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": message,
        },
        "systemMessage": message,
    })
    .to_string()
}

/// The hook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No output: Claude Code's normal permission flow applies.
    Allow,
    /// Deny with this message.
    Deny(String),
}

/// The command line's overrides.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub timeout_ms: Option<u64>,
}

/// Where failures are written.
struct Log {
    file: Option<PathBuf>,
    start: Instant,
}

impl Log {
    /// One line on stderr and in `hook.log`: what failed and how long it
    /// waited; the tool call goes ahead.
    fn fail_open(&self, what: &str) -> Decision {
        let waited = self.start.elapsed().as_millis();
        self.line(
            &format!("{what}; waited {waited} ms; tool call allowed (fail-open)"),
            true,
        );
        Decision::Allow
    }

    /// A line in `hook.log`, and on stderr too if `stderr`.
    fn line(&self, text: &str, stderr: bool) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let line = format!(
            "{now} agentops-collector hook claude-code: {}\n",
            clean_text(text, 2000)
        );
        if stderr {
            // Not `eprint!`: it panics when stderr is gone.
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some(path) = &self.file {
            append(path, &line);
        }
    }
}

/// Append one line (one `write`, `O_APPEND`: concurrent hooks do not mix
/// lines); best effort.
fn append(path: &Path, line: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        let _ = std::fs::rename(path, path.with_extension("log.1"));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The whole hook: never fails, never waits past the bound (from the start
/// to the decision, reading stdin included).
pub fn claude_code<R: Read + Send + 'static>(opts: &Options, stdin: R) -> Decision {
    let start = Instant::now();
    let mut log = Log { file: None, start };
    let cfg = match load(opts) {
        Ok(c) => c,
        Err(e) => {
            // The state dir from the flag or the defaults, for the log.
            let fallback = Config {
                state_dir: opts.state_dir.clone(),
                ..Config::default()
            };
            log.file = fallback.state_dir().ok().map(|d| d.join(LOG_FILE));
            return log.fail_open(&format!("configuration: {e:#}"));
        }
    };
    let state_dir = cfg.state_dir();
    log.file = state_dir.as_ref().ok().map(|d| d.join(LOG_FILE));
    let bound = Duration::from_millis(opts.timeout_ms.unwrap_or(cfg.hook_timeout_ms).max(1));
    let deadline = start + bound;

    let input = match read_input(stdin, deadline) {
        Ok(i) => i,
        Err(e) => return log.fail_open(&e),
    };
    if input
        .hook_event_name
        .as_deref()
        .is_some_and(|e| e != "PreToolUse")
    {
        return Decision::Allow;
    }
    let state_dir = match state_dir {
        Ok(d) => d,
        Err(e) => return log.fail_open(&format!("state dir: {e:#}")),
    };
    let key = match cfg.api_key() {
        Ok(k) => k,
        Err(e) => return log.fail_open(&format!("{e:#}")),
    };
    let machine = match crate::machine::detect(&state_dir, &cfg.machine_id_file) {
        Ok(m) => m,
        Err(e) => return log.fail_open(&format!("machine id: {e:#}")),
    };
    let cwd = input.cwd.clone().filter(|c| !c.is_empty()).or_else(|| {
        std::env::current_dir()
            .ok()
            .map(|d| d.to_string_lossy().into_owned())
    });
    let Some(cwd) = cwd else {
        return log.fail_open("no cwd in the hook input");
    };
    let h = Hierarchy::claude_code(&machine, &cwd, input.session_id.as_deref());
    let url = match h.url(&cfg.directives_url()) {
        Ok(u) => u,
        Err(e) => return log.fail_open(&e),
    };
    let directives = match ask(&url, &key, deadline) {
        Ok(d) => d,
        Err(e) => return log.fail_open(&format!("GET {}: {e}", cfg.directives_url())),
    };
    let stop = blocking(&directives);
    if stop.is_empty() {
        return Decision::Allow;
    }
    let message = deny_message(&stop);
    log.line(
        &format!(
            "denied {} in session {}: {message}",
            input.tool_name.as_deref().map(id_part).unwrap_or_default(),
            h.session_id.as_deref().unwrap_or("?"),
        ),
        false,
    );
    Decision::Deny(message)
}

fn load(opts: &Options) -> anyhow::Result<Config> {
    let mut cfg = Config::load(opts.config.as_deref())?;
    if let Some(s) = &opts.state_dir {
        cfg.state_dir = Some(s.clone());
    }
    if let Some(e) = &opts.endpoint {
        cfg.endpoint = e.clone();
    }
    Ok(cfg)
}

/// Stdin, read on its own thread so a writer that never closes it cannot
/// hold the hook past `deadline`.
fn read_input<R: Read + Send + 'static>(stdin: R, deadline: Instant) -> Result<HookInput, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("hook-stdin".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let r = stdin
                .take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut buf)
                .map(|_| buf);
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(format!("reading the hook input: {e}"));
    }
    let wait = deadline.saturating_duration_since(Instant::now());
    let bytes = match rx.recv_timeout(wait) {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(format!("reading the hook input: {e}")),
        Err(_) => return Err("the hook input did not arrive in time".to_owned()),
    };
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!("hook input over {MAX_INPUT_BYTES} bytes"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("bad hook input ({e})"))
}

/// One `GET`, connect to last byte before `deadline`.
fn ask(url: &reqwest::Url, key: &str, deadline: Instant) -> Result<Vec<Directive>, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("no time left before asking".to_owned());
    }
    let client = reqwest::Client::builder()
        .timeout(left)
        .connect_timeout(left)
        .user_agent(concat!("agentops-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let fetch = async {
        let mut resp = client
            .get(url.clone())
            .bearer_auth(key)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("gateway unreachable ({})", error_chain(e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("gateway answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the answer ({})", error_chain(e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(format!("answer over {MAX_ANSWER_BYTES} bytes"));
            }
        }
        parse_answer(&body)
    };
    let out = rt.block_on(async {
        match tokio::time::timeout(left, fetch).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} ms", left.as_millis())),
        }
    });
    // A name lookup still running on a blocking thread must not hold us.
    rt.shutdown_background();
    out
}

/// `error sending request: … : Connection refused`, one line, without the
/// URL (the query is in the log line's `GET` already, minus the ids).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}
