use clap::Parser;

/// AgentOps projections: enriched events → Postgres tables, exactly once.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (also AGENTOPS_CONFIG). Every key can be set as AGENTOPS_<KEY>.
    #[arg(long)]
    config: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let metrics = agentops_runtime::telemetry::init("projections")?;
    let config: agentops_projections::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    agentops_projections::run(config, metrics, shutdown).await?;
    Ok(())
}
