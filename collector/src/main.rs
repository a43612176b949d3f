//! `agentops-collector`: see `collector/README.md`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentops_collector::collector::{Collector, Progress};
use agentops_collector::config::Config;
use agentops_collector::sender::Sender;
use agentops_collector::store::Store;
use agentops_collector::{claude_settings, hook};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agentops-collector",
    version,
    about = "Sends coding-agent sessions (Claude Code, Codex CLI) found on this machine to AgentOps"
)]
struct Cli {
    /// TOML configuration file (environment AGENTOPS_COLLECTOR_* overrides it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Override `state_dir`.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Override `home` (whose agent directories are scanned).
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Override `endpoint`.
    #[arg(long, global = true)]
    endpoint: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run in the foreground: scan every `scan_interval_ms`, send continuously.
    Run {
        /// Scan once, send what can be sent, exit (0: outbox drained, 2: events left queued).
        #[arg(long)]
        once: bool,
        /// With --once: stop retrying after this long.
        #[arg(long, default_value_t = 60)]
        once_timeout_secs: u64,
        /// Progress lines on stderr while reading a backlog (default: on the first run).
        #[arg(long)]
        progress: bool,
    },
    /// Read all history once with progress lines, send it, exit (run --once --progress).
    Backfill {
        #[arg(long, default_value_t = 300)]
        once_timeout_secs: u64,
    },
    /// Install and start a systemd user service (or print how to run it in the foreground);
    /// with --claude-hook, add the Claude Code hook instead.
    Install {
        /// Print the unit (or the resulting Claude Code settings) instead of installing.
        #[arg(long)]
        dry_run: bool,
        /// Add our PreToolUse hook to Claude Code's settings (`<claude_dir>/settings.json`):
        /// tool calls of a session a budget paused are denied. Opt-in.
        #[arg(long)]
        claude_hook: bool,
    },
    /// Stop and remove the systemd user service (the state is kept);
    /// with --claude-hook, remove only our Claude Code hook.
    Uninstall {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        claude_hook: bool,
    },
    /// Run as an agent's hook (reads the hook's JSON on stdin). Never blocks a tool call on a
    /// failure: it goes ahead with a line in `<state_dir>/hook.log`.
    Hook {
        #[command(subcommand)]
        agent: HookAgent,
    },
    /// What is watched and queued.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum HookAgent {
    /// Claude Code's PreToolUse hook: denies the tool call when the gateway's directives for the
    /// session say paused or stopped; allows it otherwise, and on any failure.
    ClaudeCode {
        /// Bound of the whole wait for the gateway (default: `hook_timeout_ms`, 1500).
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A hook must not fail closed on its own command line (clap
            // exits 2, which Claude Code reads as "block"): the tool call
            // goes ahead.
            let as_hook = std::env::args_os().any(|a| a == "hook");
            let help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            if as_hook && !help {
                let first = e.to_string();
                let first = first.lines().next().unwrap_or("");
                let _ = writeln!(
                    std::io::stderr(),
                    "agentops-collector hook: bad command line ({first}); tool call allowed (fail-open)"
                );
                std::process::exit(0);
            }
            e.exit()
        }
    };
    if let Cmd::Hook {
        agent: HookAgent::ClaudeCode { timeout_ms },
    } = &cli.cmd
    {
        let opts = hook::Options {
            config: cli.config.clone(),
            state_dir: cli.state_dir.clone(),
            endpoint: cli.endpoint.clone(),
            timeout_ms: *timeout_ms,
        };
        if let hook::Decision::Deny(message) = hook::claude_code(&opts, std::io::stdin()) {
            // Not `println!`: it panics when stdout is gone.
            let _ = writeln!(std::io::stdout(), "{}", hook::deny_output(&message));
        }
        // Exit 0 whatever happened: allow (no output) or the deny JSON.
        std::process::exit(0);
    }
    let code = match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agentops-collector: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}

fn real_main(cli: Cli) -> Result<i32> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(s) = &cli.state_dir {
        cfg.state_dir = Some(s.clone());
    }
    if let Some(h) = &cli.home {
        cfg.home = Some(h.clone());
    }
    if let Some(e) = &cli.endpoint {
        cfg.endpoint = e.clone();
    }
    match cli.cmd {
        Cmd::Run {
            once,
            once_timeout_secs,
            progress,
        } => {
            init_logs();
            run(cfg, once, once_timeout_secs, progress)
        }
        Cmd::Backfill { once_timeout_secs } => {
            init_logs();
            run(cfg, true, once_timeout_secs, true)
        }
        Cmd::Install {
            dry_run,
            claude_hook: true,
        } => {
            install_claude_hook(&cli, &cfg, dry_run)?;
            Ok(0)
        }
        Cmd::Uninstall {
            dry_run,
            claude_hook: true,
        } => {
            let path = claude_settings::settings_path(&cfg.claude_dir()?);
            claude_settings::uninstall(&path, dry_run)?;
            Ok(0)
        }
        Cmd::Install { dry_run, .. } => {
            agentops_collector::install::install(cli.config.as_deref(), dry_run)?;
            Ok(0)
        }
        Cmd::Uninstall { dry_run, .. } => {
            agentops_collector::install::uninstall(dry_run)?;
            Ok(0)
        }
        // Handled in `main`, before the configuration is loaded.
        Cmd::Hook { .. } => Ok(0),
        Cmd::Status { json } => {
            let v = agentops_collector::status::status_json(&cfg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", agentops_collector::status::status_text(&v));
            }
            Ok(0)
        }
    }
}

/// `install --claude-hook`: the hook command carries the `--config`,
/// `--state-dir` and `--endpoint` given here (made absolute).
fn install_claude_hook(cli: &Cli, cfg: &Config, dry_run: bool) -> Result<()> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let absolute = |p: &PathBuf| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.clone())
    };
    let config = cli.config.as_ref().map(absolute);
    let state_dir = cli.state_dir.as_ref().map(absolute);
    let command = claude_settings::hook_command(
        &exe,
        config.as_deref(),
        state_dir.as_deref(),
        cli.endpoint.as_deref(),
    );
    let path = claude_settings::settings_path(&cfg.claude_dir()?);
    claude_settings::install(
        &path,
        &command,
        claude_settings::timeout_secs(cfg.hook_timeout_ms),
        dry_run,
    )?;
    if let Err(e) = cfg.api_key() {
        eprintln!(
            "note: {e:#}; until there is one the hook lets every tool call through (fail-open)"
        );
    }
    Ok(())
}

fn sender_for(cfg: &Config) -> Result<Sender> {
    let store = Store::open(&cfg.db_path()?)?;
    Sender::new(
        store,
        cfg.events_url(),
        cfg.api_key()?,
        cfg.batch_size,
        Duration::from_millis(cfg.request_timeout_ms),
    )
}

fn run(cfg: Config, once: bool, once_timeout_secs: u64, progress: bool) -> Result<i32> {
    // Fail early on a missing key rather than queue forever.
    cfg.api_key()?;
    let mut collector = Collector::open(cfg.clone())?;
    tracing::info!(
        machine = %collector.machine.id,
        machine_name = %collector.machine.name,
        state_dir = %cfg.state_dir()?.display(),
        endpoint = %cfg.events_url(),
        "collector started"
    );
    let show_progress = progress || collector.is_first_run();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if once {
        let mut p = Progress::new();
        let report = collector.scan(true, show_progress.then_some(&mut p))?;
        tracing::info!(
            files = report.files,
            lines = report.stats.lines,
            queued = report.queued,
            duplicates = report.duplicates,
            too_old = report.stats.too_old,
            parse_errors = report.stats.parse_errors,
            sessions_ended = report.sessions_ended,
            "scan done"
        );
        let mut sender = sender_for(&cfg)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(once_timeout_secs);
        let drained = rt.block_on(sender.drain(Some(deadline)))?;
        let left = sender.store.outbox_depth()?;
        if drained {
            tracing::info!("outbox drained");
            return Ok(0);
        }
        tracing::warn!(
            queued = left,
            "gave up for now; events stay queued for the next run"
        );
        return Ok(2);
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    let w = wake.clone();
    collector.on_queued = Some(Arc::new(move || w.notify_one()));
    let mut sender = sender_for(&cfg)?;
    std::thread::Builder::new()
        .name("sender".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(sender.run(wake)) {
                tracing::error!(error = %format!("{e:#}"), "sender stopped");
            }
        })
        .context("starting the sender")?;
    let interval = Duration::from_millis(cfg.scan_interval_ms.max(100));
    let mut first = true;
    let mut last_prune = std::time::Instant::now();
    loop {
        let mut p = Progress::new();
        let use_progress = first && show_progress;
        match collector.scan(false, use_progress.then_some(&mut p)) {
            Ok(r) => {
                if first || r.queued > 0 {
                    tracing::info!(
                        files = r.files,
                        lines = r.stats.lines,
                        queued = r.queued,
                        too_old = r.stats.too_old,
                        sessions_ended = r.sessions_ended,
                        "scan"
                    );
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "scan failed"),
        }
        first = false;
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = std::time::Instant::now();
            if let Err(e) = collector.prune() {
                tracing::warn!(error = %format!("{e:#}"), "pruning failed");
            }
        }
        std::thread::sleep(interval);
    }
}
