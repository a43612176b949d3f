use clap::Parser;

// The gateway allocates and frees many small objects per event (JSON values,
// strings, Avro buffers); glibc malloc was about a third of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AgentOps ingest gateway: POST /v1/events, /v1/heartbeat and OTLP /v1/traces → Kafka.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (also AGENTOPS_CONFIG). Every key can be set as AGENTOPS_<KEY>.
    #[arg(long)]
    config: Option<String>,
    /// Print the effective configuration (each setting's value and where it
    /// came from: default, file or variable; credentials masked), check it,
    /// and exit.
    #[arg(long)]
    print_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.print_config {
        let text = agentops_runtime::config::describe::<agentops_ingest_gateway::Config>(
            args.config.as_deref(),
        )?;
        let config: agentops_ingest_gateway::Config =
            agentops_runtime::config::load(args.config.as_deref())?;
        config.validate()?;
        print!("{text}");
        return Ok(());
    }
    let metrics = agentops_runtime::telemetry::init("ingest-gateway")?;
    let config: agentops_ingest_gateway::Config =
        agentops_runtime::config::load(args.config.as_deref())?;
    config.validate()?;
    let shutdown = agentops_runtime::shutdown::on_signal();
    agentops_ingest_gateway::run(config, metrics, shutdown).await?;
    Ok(())
}
