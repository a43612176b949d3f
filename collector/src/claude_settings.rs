//! `install --claude-hook` / `uninstall --claude-hook`: our `PreToolUse`
//! entry in Claude Code's user settings (`~/.claude/settings.json`).
//!
//! The settings format (<https://code.claude.com/docs/en/hooks>,
//! "Configuration"): `{"hooks": {"PreToolUse": [{"matcher": "*", "hooks":
//! [{"type": "command", "command": "…", "timeout": 3}]}]}}`; `matcher` `*`
//! matches every tool, `timeout` is in seconds (60 by default).
//!
//! The file is the developer's: every other key and hook is kept, in its
//! order ([`Json`] keeps object keys as written), the previous file is
//! copied to `settings.json.agentops-<time>.bak` before a change, the new one
//! replaces it atomically, and running it twice changes nothing. Our entry
//! is recognized by its command ending in ` hook claude-code`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How our command ends (also how it is recognized).
pub const COMMAND_TAIL: &str = "hook claude-code";

/// A JSON value whose objects keep their keys in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn remove(&mut self, key: &str) {
        if let Json::Object(m) = self {
            m.retain(|(k, _)| k != key);
        }
    }

    fn is_empty_container(&self) -> bool {
        match self {
            Json::Array(a) => a.is_empty(),
            Json::Object(m) => m.is_empty(),
            _ => false,
        }
    }

    pub fn parse(text: &str) -> Result<Json> {
        Ok(serde_json::from_str(text)?)
    }

    /// Two-space indented text with a final newline.
    pub fn pretty(&self) -> Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(t) => s.serialize_str(t),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Json::Object(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> std::result::Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> std::result::Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> std::result::Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a JSON number"))
    }
    fn visit_str<E>(self, s: &str) -> std::result::Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> std::result::Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json, A::Error> {
        let mut out: Vec<(String, Json)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            // A repeated key: the last one counts (as for serde_json), in
            // the first one's place.
            match out.iter_mut().find(|(have, _)| *have == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        Ok(Json::Object(out))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// `'…'`-quoted for the shell Claude Code runs the command with, unless it
/// needs none.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `<exe> [--config F] [--state-dir D] [--endpoint URL] hook claude-code`.
pub fn hook_command(
    exe: &Path,
    config: Option<&Path>,
    state_dir: Option<&Path>,
    endpoint: Option<&str>,
) -> String {
    let mut parts = vec![shell_quote(&exe.to_string_lossy())];
    if let Some(c) = config {
        parts.push("--config".into());
        parts.push(shell_quote(&c.to_string_lossy()));
    }
    if let Some(d) = state_dir {
        parts.push("--state-dir".into());
        parts.push(shell_quote(&d.to_string_lossy()));
    }
    if let Some(e) = endpoint {
        parts.push("--endpoint".into());
        parts.push(shell_quote(e));
    }
    parts.push(COMMAND_TAIL.into());
    parts.join(" ")
}

/// Claude Code's `timeout` (seconds) for a hook bounded by
/// `hook_timeout_ms`: a little above, so the hook's own fail-open decides.
pub fn timeout_secs(hook_timeout_ms: u64) -> u64 {
    hook_timeout_ms.div_ceil(1000) + 1
}

/// Is this hook handler ours?
pub fn is_ours(handler: &Json) -> bool {
    matches!(handler.get("command"), Some(Json::String(c))
        if c.trim_end() == COMMAND_TAIL || c.trim_end().ends_with(&format!(" {COMMAND_TAIL}")))
}

/// `settings` without our handlers; groups and containers left empty by
/// their removal are removed too.
pub fn without_hook(mut settings: Json) -> Json {
    let Some(hooks) = settings.get_mut("hooks") else {
        return settings;
    };
    let Some(Json::Array(groups)) = hooks.get_mut("PreToolUse") else {
        return settings;
    };
    groups.retain_mut(|g| match g.get_mut("hooks") {
        Some(Json::Array(handlers)) => {
            let before = handlers.len();
            handlers.retain(|h| !is_ours(h));
            !(handlers.is_empty() && before > 0)
        }
        _ => true,
    });
    if groups.is_empty() {
        hooks.remove("PreToolUse");
    }
    if hooks.is_empty_container() {
        settings.remove("hooks");
    }
    settings
}

/// `settings` with exactly one handler of ours: `command`, `timeout`
/// seconds, in a group of its own matching every tool (after the others).
pub fn with_hook(settings: Json, command: &str, timeout: u64) -> Result<Json> {
    if !matches!(settings, Json::Object(_)) {
        bail!("the settings are not a JSON object");
    }
    if let Some(h) = settings.get("hooks") {
        if !matches!(h, Json::Object(_)) {
            bail!("`hooks` in the settings is not an object");
        }
        if let Some(p) = h.get("PreToolUse") {
            if !matches!(p, Json::Array(_)) {
                bail!("`hooks.PreToolUse` in the settings is not an array");
            }
        }
    }
    let mut settings = without_hook(settings);
    let group = Json::Object(vec![
        ("matcher".into(), Json::String("*".into())),
        (
            "hooks".into(),
            Json::Array(vec![Json::Object(vec![
                ("type".into(), Json::String("command".into())),
                ("command".into(), Json::String(command.to_owned())),
                ("timeout".into(), Json::Number(timeout.into())),
            ])]),
        ),
    ]);
    if let Json::Object(top) = &mut settings {
        if !top.iter().any(|(k, _)| k == "hooks") {
            top.push(("hooks".into(), Json::Object(Vec::new())));
        }
    }
    if let Some(Json::Object(hooks)) = settings.get_mut("hooks") {
        if !hooks.iter().any(|(k, _)| k == "PreToolUse") {
            hooks.push(("PreToolUse".into(), Json::Array(Vec::new())));
        }
    }
    if let Some(Json::Array(groups)) = settings
        .get_mut("hooks")
        .and_then(|h| h.get_mut("PreToolUse"))
    {
        groups.push(group);
    }
    Ok(settings)
}

/// Claude Code's user settings file: `<claude_dir>/settings.json`.
pub fn settings_path(claude_dir: &Path) -> PathBuf {
    claude_dir.join("settings.json")
}

/// The file's settings, `{}` when there is no file (or an empty one).
fn read(path: &Path) -> Result<(Option<String>, Json)> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok((Some(text), Json::Object(Vec::new()))),
        Ok(text) => {
            let v = Json::parse(&text)
                .with_context(|| format!("{} is not valid JSON; left as it is", path.display()))?;
            Ok((Some(text), v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, Json::Object(Vec::new()))),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Printed only.
    DryRun,
    Unchanged,
    /// Written; the previous file (if any) kept at this path.
    Written {
        backup: Option<PathBuf>,
    },
}

/// Read `path`, change it with `f`, write it back (backup first, atomic
/// rename) unless nothing changed; with `dry_run` print the result instead.
pub fn apply(path: &Path, dry_run: bool, f: impl FnOnce(Json) -> Result<Json>) -> Result<Applied> {
    let (old_text, old) = read(path)?;
    let new = f(old.clone())?;
    let text = new.pretty()?;
    if dry_run {
        println!("# {}", path.display());
        print!("{text}");
        return Ok(Applied::DryRun);
    }
    if new == old && old_text.is_some() {
        return Ok(Applied::Unchanged);
    }
    if old_text.is_none() && new == Json::Object(Vec::new()) {
        return Ok(Applied::Unchanged);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings.json".to_owned());
    let backup = match &old_text {
        Some(_) => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            let b = dir.join(format!("{name}.agentops-{stamp}.bak"));
            std::fs::copy(path, &b)
                .with_context(|| format!("backing {} up to {}", path.display(), b.display()))?;
            Some(b)
        }
        None => None,
    };
    let tmp = dir.join(format!(
        ".{name}.agentops-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("replacing {}", path.display()));
    }
    Ok(Applied::Written { backup })
}

/// `install --claude-hook`.
pub fn install(path: &Path, command: &str, timeout: u64, dry_run: bool) -> Result<()> {
    let done = apply(path, dry_run, |s| with_hook(s, command, timeout))?;
    match done {
        Applied::DryRun => {}
        Applied::Unchanged => println!("the Claude Code hook is already in {}", path.display()),
        Applied::Written { backup } => {
            println!(
                "added the Claude Code PreToolUse hook to {}",
                path.display()
            );
            if let Some(b) = backup {
                println!("previous settings kept in {}", b.display());
            }
            println!("command: {command}");
            println!(
                "new Claude Code sessions pick it up (running ones: restart them or open /hooks)"
            );
        }
    }
    Ok(())
}

/// `uninstall --claude-hook`.
pub fn uninstall(path: &Path, dry_run: bool) -> Result<()> {
    let done = apply(path, dry_run, |s| Ok(without_hook(s)))?;
    match done {
        Applied::DryRun => {}
        Applied::Unchanged => println!("no AgentOps hook in {}", path.display()),
        Applied::Written { backup } => {
            println!("removed the AgentOps hook from {}", path.display());
            if let Some(b) = backup {
                println!("previous settings kept in {}", b.display());
            }
        }
    }
    Ok(())
}
