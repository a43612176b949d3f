//! Shared runtime plumbing for every AgentOps component.
//!
//! One place for: configuration loading (file + `AGENTOPS_*` environment),
//! telemetry (structured `tracing` logs, Prometheus `/metrics`), the health
//! endpoint, graceful shutdown, task supervision, Kafka client setup, the Postgres pool with its
//! migrations, and API keys.

pub mod api_error;
pub mod config;
pub mod copy;
pub mod db;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod openapi;
pub mod outbound;
pub mod secrets;
pub mod shutdown;
pub mod storage;
pub mod supervise;
pub mod telemetry;

/// Errors raised by the shared runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or argument that cannot work (named in the message).
    #[error("configuration: {0}")]
    Config(String),
    /// A Kafka topic that cannot be created or read.
    #[error("kafka topic {topic}: {message}")]
    Topic { topic: String, message: String },
    /// A schema change the database refused.
    #[error("schema migration: {0}")]
    Schema(String),
    /// An HTTP client that cannot be built.
    #[error("HTTP client: {0}")]
    HttpClient(String),
    /// A long job (rebuild, recompute) stopped by shutdown before it finished.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A long job that could not complete its work (what is left is named).
    #[error("{0}")]
    Incomplete(String),
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
