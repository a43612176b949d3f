use clap::Parser;

/// AgentOps ingest gateway: POST /v1/events → Kafka.
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
    let metrics = agentops_runtime::telemetry::init("ingest-gateway")?;
    let config: agentops_ingest_gateway::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    agentops_ingest_gateway::run(config, metrics, shutdown).await?;
    Ok(())
}
