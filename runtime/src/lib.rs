//! Shared runtime plumbing for every AgentOps component.
//!
//! One place for: configuration loading (file + `AGENTOPS_*` environment),
//! telemetry (structured `tracing` logs, Prometheus `/metrics`), the health
//! endpoint, graceful shutdown, task supervision, Kafka client setup, the Postgres pool with its
//! migrations, and API keys.

pub mod api_error;
pub mod config;
pub mod db;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod outbound;
pub mod secrets;
pub mod shutdown;
pub mod storage;
pub mod supervise;
pub mod telemetry;

/// Errors raised by the shared runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("telemetry: {0}")]
    Telemetry(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Task(#[from] supervise::TaskFailed),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
