//! Harness for the end-to-end suite.
//!
//! Each test gets its own database, its own topics and its own ports, then
//! starts every component as a separate process (the binaries built in
//! `AGENTOPS_BIN_DIR`, default `target/debug`) against the broker at
//! `AGENTOPS_TEST_KAFKA` and the Postgres server at `AGENTOPS_TEST_PG`
//! (an admin URL whose database is replaced per test). `deploy/local/test.sh`
//! starts both and sets these variables.

mod browser;
mod db;
pub mod definitions;
mod env;
pub mod events;
pub mod history;
pub mod kafka;
pub mod python;
mod stack;
pub mod webhook;

pub use browser::run_browser_test;
pub use db::{
    add_members, create_database, create_database_on, plain_config, prepared_database,
    restartable_pg, timescale_url,
};
pub use env::{free_port, kafka_brokers};
pub use kafka::KafkaCluster;
pub use stack::{processors_only, Component, EnrichedProducer, Ingest, Stack, StackOptions};
