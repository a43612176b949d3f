//! AgentOps load generator: a synthetic agent fleet for demos (`demo`) and
//! the ingest-gateway benchmark against a raw Kafka producer (`bench`, JSON
//! or OTLP bodies, throughput and open-loop latency), and
//! the storage, console and freshness benchmarks (`bench-projections`,
//! `bench-queries`, `bench-console`, `bench-freshness`), the processor benchmark (`bench-processors`)
//! and the live feed's WebSocket fan-out (`bench-live`).

pub mod bench;
pub mod bench_alerts;
pub mod bench_console;
mod bench_latency;
pub mod bench_live;
mod bench_otlp;
pub mod bench_processors;
pub mod bench_scale;
pub mod bench_store;
mod catalog;
pub mod demo;
pub mod fleet;
pub mod freshness;
mod http;
mod procstat;
mod report;
mod steps;

/// Progress lines go to stderr, stamped with the wall-clock time.
pub(crate) fn log(msg: &str) {
    eprintln!(
        "{} loadgen: {msg}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
}
