use agentops_runtime::storage::ModeChoice;
use clap::{Parser, Subcommand, ValueEnum};

/// AgentOps projections: enriched events → Postgres / TimescaleDB, exactly once.
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
    /// Consume the enriched topic and keep the projections up to date (the default).
    Run,
    /// Drop every projection and rebuild it from the earliest retained offset
    /// of the enriched topic, with progress on stderr. Live workers pause meanwhile.
    Rebuild {
        /// Storage mode to rebuild in (default: the configured one); also how
        /// to switch between plain PostgreSQL and TimescaleDB.
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Auto,
    Timescaledb,
    Postgres,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_config {
        let text = agentops_runtime::config::describe::<agentops_projections::Config>(
            args.config.as_deref(),
        )?;
        let config: agentops_projections::Config =
            agentops_runtime::config::load(args.config.as_deref())?;
        config.validate()?;
        print!("{text}");
        return Ok(());
    }
    let metrics = agentops_runtime::telemetry::init("projections")?;
    let config: agentops_projections::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    config.validate()?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    match args.command.unwrap_or(Command::Run) {
        Command::Run => agentops_projections::run(config, metrics, shutdown).await?,
        Command::Rebuild { mode } => {
            let mode = mode.map(|m| match m {
                ModeArg::Auto => ModeChoice::Auto,
                ModeArg::Timescaledb => ModeChoice::Timescaledb,
                ModeArg::Postgres => ModeChoice::Postgres,
            });
            agentops_projections::rebuild(config, mode, shutdown).await?;
        }
    }
    Ok(())
}
