//! AgentOps load generator: a synthetic agent fleet for demos (`demo`) and
//! the ingest-gateway benchmark against a raw Kafka producer (`bench`, JSON
//! or OTLP bodies, throughput and open-loop latency), and
//! the storage and freshness benchmarks (`bench-projections`, `bench-queries`,
//! `bench-freshness`), and the processor benchmark (`bench-processors`).

pub mod bench;
pub mod bench_alerts;
mod bench_latency;
mod bench_otlp;
pub mod bench_processors;
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
