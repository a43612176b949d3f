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
    /// Projection writer rows/s beside a raw binary COPY (plain PostgreSQL).
    BenchProjections(agentops_loadgen::bench_store::ProjectionsOptions),
    /// Query API latency over a large history beside the same queries on raw events.
    BenchQueries(agentops_loadgen::bench_store::QueriesOptions),
    /// The console's endpoints (p50/p95) over the bench-queries history.
    BenchConsole(agentops_loadgen::bench_console::ConsoleOptions),
    /// Scale benchmark, one history size: every dashboard endpoint beside raw events.
    BenchScale(agentops_loadgen::bench_scale::ScaleOptions),
    /// How each endpoint's p95 grows across the bench-scale sizes.
    BenchScaleReport(agentops_loadgen::bench_scale::ReportOptions),
    /// Gateway 202 → visible in the overview, at a sustained rate.
    BenchFreshness(agentops_loadgen::freshness::FreshnessOptions),
    /// WebSocket live feed: fan-out latency and throughput with clients beside without.
    BenchLive(agentops_loadgen::bench_live::LiveOptions),
    /// Processor events/s beside a raw consume→produce loop; budget alert latency.
    BenchProcessors(agentops_loadgen::bench_processors::ProcessorsOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Demo(o) => agentops_loadgen::demo::run(o).await,
        Command::BenchProjections(o) => agentops_loadgen::bench_store::projections(o).await,
        Command::BenchQueries(o) => agentops_loadgen::bench_store::queries(o).await,
        Command::BenchConsole(o) => agentops_loadgen::bench_console::run(o).await,
        Command::BenchScale(o) => agentops_loadgen::bench_scale::run(o).await,
        Command::BenchScaleReport(o) => agentops_loadgen::bench_scale::report(o),
        Command::BenchFreshness(o) => agentops_loadgen::freshness::run(o).await,
        Command::BenchLive(o) => agentops_loadgen::bench_live::run(o).await,
        Command::BenchProcessors(o) => agentops_loadgen::bench_processors::run(o).await,
        Command::Bench(o) => {
            if agentops_loadgen::bench::run(o).await? {
                Ok(())
            } else {
                std::process::exit(2)
            }
        }
    }
}
