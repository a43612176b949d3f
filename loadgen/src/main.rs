use clap::{Parser, Subcommand};

/// AgentOps load generator.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Post a live synthetic agent fleet to the gateway until stopped.
    Demo(agentops_loadgen::demo::DemoOptions),
    /// Measure the gateway against a raw Kafka producer in one run.
    Bench(agentops_loadgen::bench::BenchOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Demo(o) => agentops_loadgen::demo::run(o).await,
        Command::Bench(o) => {
            if agentops_loadgen::bench::run(o).await? {
                Ok(())
            } else {
                std::process::exit(2)
            }
        }
    }
}
