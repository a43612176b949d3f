//! `agentops-collector`: see `collector/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentops_collector::collector::{Collector, Progress};
use agentops_collector::config::Config;
use agentops_collector::sender::Sender;
use agentops_collector::store::Store;
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
    /// Install and start a systemd user service (or print how to run it in the foreground).
    Install {
        /// Print the unit instead of installing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop and remove the systemd user service (the state is kept).
    Uninstall {
        #[arg(long)]
        dry_run: bool,
    },
    /// What is watched and queued.
    Status {
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let code = match real_main() {
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

fn real_main() -> Result<i32> {
    let cli = Cli::parse();
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(s) = cli.state_dir {
        cfg.state_dir = Some(s);
    }
    if let Some(h) = cli.home {
        cfg.home = Some(h);
    }
    if let Some(e) = cli.endpoint {
        cfg.endpoint = e;
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
        Cmd::Install { dry_run } => {
            agentops_collector::install::install(cli.config.as_deref(), dry_run)?;
            Ok(0)
        }
        Cmd::Uninstall { dry_run } => {
            agentops_collector::install::uninstall(dry_run)?;
            Ok(0)
        }
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
