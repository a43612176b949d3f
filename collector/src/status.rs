//! `status`: what the collector watches and what is queued, from its database.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::config::Config;
use crate::store::Store;

/// The status as JSON.
pub fn status_json(cfg: &Config) -> Result<Value> {
    let db = cfg.db_path()?;
    if !db.exists() {
        bail!(
            "no collector state at {} (not run yet, or another state_dir)",
            db.display()
        );
    }
    let store = Store::open_read_only(&db)?;
    let machine: Value = store
        .meta("machine")?
        .and_then(|m| serde_json::from_str(&m).ok())
        .unwrap_or(Value::Null);
    let sources: Value = match store.meta("sources")? {
        Some(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
        None => serde_json::to_value(cfg.sources()?)?,
    };
    let files: Vec<Value> = store
        .file_rows()?
        .into_iter()
        .map(|f| {
            json!({
                "path": f.path, "kind": f.kind, "session": f.session,
                "offset": f.checkpoint.offset, "size": f.checkpoint.size,
                "updated_at": crate::event::rfc3339_ms(f.updated_at),
            })
        })
        .collect();
    let counters: serde_json::Map<String, Value> = store
        .counters()?
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let sessions: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))?;
    Ok(json!({
        "state_dir": cfg.state_dir()?.to_string_lossy(),
        "endpoint": cfg.events_url(),
        "machine": machine,
        "sources": sources,
        "files": files,
        "sessions": sessions,
        "outbox_depth": store.outbox_depth()?,
        "last_send_at": store.meta("last_send_at")?,
        "last_send_result": store.meta("last_send_result")?,
        "counters": counters,
    }))
}

/// The status as text for a person.
pub fn status_text(v: &Value) -> String {
    let mut s = String::new();
    let g = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let m = g("machine");
    s.push_str(&format!(
        "machine   {} ({}, {})\n",
        m.get("name").and_then(Value::as_str).unwrap_or("?"),
        m.get("id").and_then(Value::as_str).unwrap_or("?"),
        m.get("os").and_then(Value::as_str).unwrap_or("?"),
    ));
    s.push_str(&format!(
        "state     {}\n",
        g("state_dir").as_str().unwrap_or("?")
    ));
    s.push_str(&format!(
        "endpoint  {}\n",
        g("endpoint").as_str().unwrap_or("?")
    ));
    if let Some(srcs) = g("sources").as_array() {
        for src in srcs {
            let root = src.get("root").and_then(Value::as_str).unwrap_or("?");
            let exists = std::path::Path::new(root).is_dir();
            s.push_str(&format!(
                "source    {:<12} {}{}\n",
                src.get("kind").and_then(Value::as_str).unwrap_or("?"),
                root,
                if exists { "" } else { " (absent)" }
            ));
        }
    }
    let files = g("files");
    let files = files.as_array().cloned().unwrap_or_default();
    s.push_str(&format!(
        "files     {} watched, sessions {}\n",
        files.len(),
        g("sessions")
    ));
    for f in &files {
        let off = f.get("offset").and_then(Value::as_u64).unwrap_or(0);
        let size = f.get("size").and_then(Value::as_u64).unwrap_or(0);
        s.push_str(&format!(
            "  {:<12} {:>12}/{:<12} {}\n",
            f.get("kind").and_then(Value::as_str).unwrap_or("?"),
            off,
            size,
            f.get("path").and_then(Value::as_str).unwrap_or("?"),
        ));
    }
    s.push_str(&format!("outbox    {} events queued\n", g("outbox_depth")));
    s.push_str(&format!(
        "last send {} {}\n",
        g("last_send_at").as_str().unwrap_or("never"),
        g("last_send_result").as_str().unwrap_or("")
    ));
    if let Some(c) = g("counters").as_object() {
        for (k, v) in c {
            s.push_str(&format!("  {k:<24} {v}\n"));
        }
    }
    s
}
