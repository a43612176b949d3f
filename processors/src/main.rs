use agentops_processors::recompute;
use clap::{Parser, Subcommand};

/// AgentOps processors: enrich raw events with cost, check budgets, send notifications.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (also AGENTOPS_CONFIG). Every key can be set as AGENTOPS_<KEY>.
    #[arg(long, global = true)]
    config: Option<String>,
    /// Print the effective configuration (each setting's value and where it
    /// came from: default, file or variable; credentials masked), check it,
    /// and exit.
    #[arg(long, global = true)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the processors (the default).
    Run,
    /// Re-price a time range with the price table now in Postgres: appends a
    /// cost correction to the enriched topic for every event whose cost changes.
    Recompute {
        /// Start (inclusive): RFC 3339 or a UTC date (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// End (exclusive): RFC 3339, or a UTC date (through the end of that day).
        #[arg(long)]
        to: String,
        /// Only this org's events.
        #[arg(long)]
        org: Option<String>,
        /// Report what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Consumer group of the projections (TimescaleDB: waited for before
        /// the continuous aggregates are refreshed over the range).
        #[arg(long, default_value = "agentops-projections")]
        projections_group: String,
        /// How long to wait for the projections to apply the corrections (s).
        #[arg(long, default_value_t = 300)]
        wait_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_config {
        let text = agentops_runtime::config::describe::<agentops_processors::Config>(
            args.config.as_deref(),
        )?;
        let config: agentops_processors::Config =
            agentops_runtime::config::load(args.config.as_deref())?;
        config.validate()?;
        print!("{text}");
        return Ok(());
    }
    let metrics = agentops_runtime::telemetry::init("processors")?;
    let config: agentops_processors::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    config.validate()?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    match args.command.unwrap_or(Command::Run) {
        Command::Run => agentops_processors::run(config, metrics, shutdown).await?,
        Command::Recompute {
            from,
            to,
            org,
            dry_run,
            projections_group,
            wait_secs,
        } => {
            let opts = recompute::Options {
                from: recompute::parse_bound(&from, false)
                    .map_err(|e| anyhow::anyhow!("--from: {e}"))?,
                to: recompute::parse_bound(&to, true).map_err(|e| anyhow::anyhow!("--to: {e}"))?,
                org,
                dry_run,
                projections_group,
                wait_secs,
            };
            let s = recompute::recompute(config, opts, shutdown).await?;
            println!(
                "recomputed: events={} corrections={} cost_delta_usd={:.9} unpriced_before={} unpriced_after={}",
                s.events, s.corrections, s.cost_delta, s.unpriced_before, s.unpriced_after
            );
        }
    }
    Ok(())
}
