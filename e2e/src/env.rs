//! Where the test environment is: the shared broker, the components'
//! binaries, their logs, and free loopback ports.

use std::path::PathBuf;

pub(crate) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn kafka_brokers() -> String {
    env_or("AGENTOPS_TEST_KAFKA", "127.0.0.1:19092")
}

pub(crate) fn bin_dir() -> PathBuf {
    match std::env::var("AGENTOPS_BIN_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"),
    }
}

pub(crate) fn log_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-logs");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
