//! AgentOps load generator: a synthetic agent fleet for demos (`demo`) and
//! the ingest-gateway benchmark against a raw Kafka producer (`bench`).

pub mod bench;
mod catalog;
pub mod demo;
pub mod fleet;
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
