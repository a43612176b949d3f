use clap::Parser;

/// AgentOps processors: enrich raw events with cost, check budgets, send notifications.
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
    let metrics = agentops_runtime::telemetry::init("processors")?;
    let config: agentops_processors::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    agentops_processors::run(config, metrics, shutdown).await?;
    Ok(())
}
