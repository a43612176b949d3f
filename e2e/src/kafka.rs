//! Private Apache Kafka nodes for the broker-fault tests: one node, or a
//! KRaft cluster of three on loopback ports, each node a combined broker +
//! controller, started from the jars `deploy/local/lib.sh ensure_kafka`
//! cached (`AGENTOPS_KAFKA_LIBS`) and the same `server.properties.in`
//! template as the shared test broker. A test can SIGKILL a node and start
//! it again on the same storage: a real broker crash, not a simulation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::free_port;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn libs() -> Result<PathBuf> {
    let dir = std::env::var("AGENTOPS_KAFKA_LIBS").context(
        "AGENTOPS_KAFKA_LIBS is not set: run the tests through deploy/local/test.sh, \
         which fetches Apache Kafka's jars and sets it",
    )?;
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        bail!("AGENTOPS_KAFKA_LIBS={} is not a directory", dir.display());
    }
    Ok(dir)
}

/// A java command on the Kafka classpath with `heap`.
fn java(libs: &Path, heap: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg(format!("-Xms{heap}"))
        .arg(format!("-Xmx{heap}"))
        .args([
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
        ])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            repo().join("deploy/local/kafka/log4j2.yaml").display()
        ))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()));
    cmd
}

struct Node {
    id: u32,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// One or more Kafka nodes forming one cluster; stopped (SIGKILL) and their
/// storage removed on drop.
pub struct KafkaCluster {
    dir: PathBuf,
    libs: PathBuf,
    nodes: Vec<Node>,
}

impl KafkaCluster {
    /// Start `n` nodes (1 or 3 in our tests) under `target/e2e-kafka/<name>-<random>`.
    /// With 3 nodes topics default to replication factor 3 and
    /// `min.insync.replicas=2`; with one node, 1 and 1.
    pub async fn start(name: &str, n: usize) -> Result<KafkaCluster> {
        let libs = libs()?;
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = repo().join(format!("target/e2e-kafka/{name}-{suffix}"));
        std::fs::create_dir_all(&dir)?;
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let (rf, min_isr) = if n >= 3 { (3, 2) } else { (n, 1) };
        let template =
            std::fs::read_to_string(repo().join("deploy/local/kafka/server.properties.in"))
                .context("read deploy/local/kafka/server.properties.in")?;
        let cluster_id = {
            use std::fmt::Write;
            // Kafka's Uuid text: 16 bytes, URL-safe base64 without padding.
            // The top bit is cleared so the text never starts with '-', which
            // StorageTool's argument parser would take for an option.
            let mut bytes = uuid::Uuid::new_v4().into_bytes();
            bytes[0] &= 0x7f;
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut out = String::new();
            for b in bytes {
                bits = (bits << 8) | u32::from(b);
                nbits += 8;
                while nbits >= 6 {
                    nbits -= 6;
                    let _ = out.write_char(alphabet[((bits >> nbits) & 63) as usize] as char);
                }
            }
            if nbits > 0 {
                let _ = out.write_char(alphabet[((bits << (6 - nbits)) & 63) as usize] as char);
            }
            out
        };
        let mut nodes = Vec::new();
        let mut formats = Vec::new();
        for (i, (port, cport)) in ports.iter().enumerate() {
            let id = i as u32 + 1;
            let node_dir = dir.join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir)?;
            let props = template
                .replace("@NODE_ID@", &id.to_string())
                .replace("@VOTERS@", &voters)
                .replace("@PORT@", &port.to_string())
                .replace("@CONTROLLER_PORT@", &cport.to_string())
                .replace("@LOG_DIR@", &node_dir.join("data").display().to_string())
                .replace("@PARTITIONS@", "4")
                .replace("@REPLICATION@", &rf.to_string())
                .replace("@MIN_ISR@", &min_isr.to_string());
            std::fs::write(node_dir.join("server.properties"), props)?;
            let log = std::fs::File::create(node_dir.join("format.log"))?;
            formats.push(
                java(&libs, "256m")
                    .args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                    .arg(node_dir.join("server.properties"))
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("run java (Kafka's StorageTool)")?,
            );
            nodes.push(Node {
                id,
                port: *port,
                dir: node_dir,
                child: None,
            });
        }
        for mut f in formats {
            let status = f.wait()?;
            if !status.success() {
                bail!("formatting Kafka storage failed; see {}", dir.display());
            }
        }
        let mut cluster = KafkaCluster { dir, libs, nodes };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        cluster.wait_ready(n).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("kafka.log"))?;
        let child = java(&self.libs, "512m")
            .args(["kafka.Kafka", "server.properties"])
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start a Kafka node (java kafka.Kafka)")?;
        node.child = Some(child);
        Ok(())
    }

    /// Bootstrap servers: every node.
    pub fn brokers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node ids (1-based) in the cluster.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// SIGKILL node `id` (1-based): no controlled shutdown, no flush.
    pub fn kill(&mut self, id: u32) -> Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .context("no such node")?;
        if let Some(mut c) = node.child.take() {
            c.kill()?; // SIGKILL
            c.wait()?;
        }
        Ok(())
    }

    /// Start node `id` again on its storage; returns once the cluster
    /// reports `live` brokers.
    pub async fn restart(&mut self, id: u32, live: usize) -> Result<()> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .context("no such node")?;
        if self.nodes[i].child.is_none() {
            self.spawn(i)?;
        }
        self.wait_ready(live).await
    }

    /// Wait until a metadata request (a real client call) sees `live`
    /// brokers; fails after 120 s.
    pub async fn wait_ready(&self, live: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let seen = self
                .with_client(|c| {
                    Ok(c.fetch_metadata(None, Duration::from_secs(3))?
                        .brokers()
                        .len())
                })
                .await;
            if matches!(seen, Ok(n) if n >= live) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Kafka cluster not ready ({seen:?} brokers, want {live}); logs in {}",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The live node that leads the most records of `topic`: the sum of the
    /// high watermarks of the partitions it leads.
    pub async fn busiest_leader(&self, topic: &str) -> Result<u32> {
        let topic = topic.to_owned();
        self.with_client(move |c| {
            let md = c.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
            let mut load = std::collections::BTreeMap::<i32, i64>::new();
            for p in md.topics().iter().flat_map(|t| t.partitions()) {
                let (_, high) = c.fetch_watermarks(&topic, p.id(), Duration::from_secs(5))?;
                *load.entry(p.leader()).or_default() += high;
            }
            let (leader, _) = load
                .into_iter()
                .filter(|(l, _)| *l > 0)
                .max_by_key(|(_, n)| *n)
                .context("no partition has a leader")?;
            Ok(leader as u32)
        })
        .await
    }

    /// In-sync replica count of each partition of `topic`.
    pub async fn isr(&self, topic: &str) -> Result<Vec<(i32, usize)>> {
        let topic = topic.to_owned();
        self.with_client(move |c| {
            let md = c.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
            Ok(md
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.isr().len())))
                .collect())
        })
        .await
    }

    /// Run `f` with a fresh client of the cluster, off the async threads
    /// (metadata and watermark calls block).
    async fn with_client<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&BaseConsumer) -> Result<T> + Send + 'static,
    {
        let brokers = self.brokers();
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .create()?;
            f(&c)
        })
        .await?
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Who owns each partition of a consumer group, as the broker's group
/// coordinator reports it (Kafka's own `ConsumerGroupCommand --describe`):
/// (topic, partition, member id or `None` when unowned).
pub fn group_owners(brokers: &str, group: &str) -> Result<Vec<(String, i32, Option<String>)>> {
    let libs = libs()?;
    let out = java(&libs, "256m")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            repo()
                .join("deploy/local/kafka/log4j2-tools.yaml")
                .display()
        ))
        .args([
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            "--bootstrap-server",
            brokers,
            "--describe",
            "--group",
            group,
        ])
        .stdin(Stdio::null())
        .output()
        .context("run Kafka's ConsumerGroupCommand")?;
    if !out.status.success() {
        bail!(
            "ConsumerGroupCommand failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut owners = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        if cols.len() < 7 || cols[0] != group {
            continue;
        }
        let Ok(partition) = cols[2].parse::<i32>() else {
            continue;
        };
        let member = (cols[6] != "-").then(|| cols[6].to_owned());
        owners.push((cols[1].to_owned(), partition, member));
    }
    Ok(owners)
}

/// One record read back by [`read_topic`].
#[derive(Debug, Clone)]
pub struct Record {
    pub headers: std::collections::HashMap<String, String>,
    pub payload: Vec<u8>,
}

/// Every record on `topic` of the shared test broker (all partitions, from
/// the start), reading until `done` says so or `timeout` passes.
pub async fn read_topic(
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Result<Vec<Record>> {
    use rdkafka::consumer::StreamConsumer;
    use rdkafka::message::{Headers, Message};
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", crate::kafka_brokers())
        .set("group.id", format!("reader-{}", crate::events::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while !done(&out) {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => bail!("read {topic}: {e}"),
            Ok(Ok(m)) => {
                let mut headers = std::collections::HashMap::new();
                if let Some(hs) = m.headers() {
                    for h in hs.iter() {
                        let v = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        headers.insert(h.key.to_owned(), v.unwrap_or_default());
                    }
                }
                out.push(Record {
                    headers,
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
        }
    }
    Ok(out)
}
