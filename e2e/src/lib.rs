//! Harness for the end-to-end suite.
//!
//! Each test gets its own database, its own topics and its own ports, then
//! starts every component as a separate process (the binaries built in
//! `AGENTOPS_BIN_DIR`, default `target/debug`) against the broker at
//! `AGENTOPS_TEST_KAFKA` and the Postgres server at `AGENTOPS_TEST_PG`
//! (an admin URL whose database is replaced per test). `deploy/local/test.sh`
//! starts both and sets these variables.

pub mod events;
pub mod kafka;
pub mod webhook;

pub use kafka::KafkaCluster;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sqlx::PgPool;

pub use agentops_runtime::keys::NewKey;

/// The components a stack runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Gateway,
    Processors,
    Projections,
    QueryApi,
}

impl Component {
    pub fn binary(self) -> &'static str {
        match self {
            Component::Gateway => "agentops-ingest-gateway",
            Component::Processors => "agentops-processors",
            Component::Projections => "agentops-projections",
            Component::QueryApi => "agentops-query-api",
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn kafka_brokers() -> String {
    env_or("AGENTOPS_TEST_KAFKA", "127.0.0.1:19092")
}

fn pg_admin_url() -> String {
    env_or(
        "AGENTOPS_TEST_PG",
        "postgres://agentops:agentops@127.0.0.1:5432/postgres",
    )
}

fn bin_dir() -> PathBuf {
    match std::env::var("AGENTOPS_BIN_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"),
    }
}

fn log_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-logs");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// A fresh database on the test Postgres server; returns its URL.
pub async fn create_database(prefix: &str) -> Result<String> {
    create_database_on(&pg_admin_url(), prefix).await
}

/// A fresh database on the Postgres server of `admin_url`; returns its URL.
pub async fn create_database_on(admin_url: &str, prefix: &str) -> Result<String> {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let name = format!("{prefix}_{suffix}");
    let admin = PgPool::connect(admin_url)
        .await
        .context("connect to the test Postgres (AGENTOPS_TEST_PG)")?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut db_url = reqwest::Url::parse(admin_url)?;
    db_url.set_path(&name);
    Ok(db_url.to_string())
}

/// URL of the TimescaleDB (PGlite) server started by `deploy/local/test.sh`.
pub fn timescale_url() -> Option<String> {
    std::env::var("AGENTOPS_TEST_TIMESCALE").ok()
}

/// A free loopback port (bound then released).
/// The second PostgreSQL that tests may stop and start: its admin URL and
/// the command that restarts it (`AGENTOPS_TEST_PG_RESTART`,
/// `AGENTOPS_TEST_PG_RESTART_CTL`, set by deploy/local/test.sh).
pub fn restartable_pg() -> Result<(String, String)> {
    let admin = std::env::var("AGENTOPS_TEST_PG_RESTART").context(
        "AGENTOPS_TEST_PG_RESTART is not set: run through deploy/local/test.sh (it starts a \
         second PostgreSQL this test may stop and start)",
    )?;
    let ctl =
        std::env::var("AGENTOPS_TEST_PG_RESTART_CTL").context("AGENTOPS_TEST_PG_RESTART_CTL")?;
    Ok((admin, ctl))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A database and topics of one test, with every component running.
pub struct Stack {
    pub name: String,
    pub db_url: String,
    pub pool: PgPool,
    pub org_id: String,
    pub ingest_key: String,
    pub read_key: String,
    pub admin_key: String,
    pub gateway_url: String,
    pub query_url: String,
    pub http: reqwest::Client,
    ports: HashMap<Component, Vec<u16>>,
    children: Vec<(Component, usize, Child)>,
    extra_env: Vec<(String, String)>,
    dynamic_membership: bool,
}

/// Options for [`Stack::start`].
#[derive(Default, Clone)]
pub struct StackOptions {
    /// How many processor instances (default 1).
    pub processors: usize,
    /// How many gateway instances (default 1; [`Stack::gateway_urls`]).
    pub gateways: usize,
    /// How many projection instances (default 1).
    pub projections: usize,
    /// Extra environment for every component.
    pub env: Vec<(String, String)>,
    /// Do not start these components.
    pub skip: Vec<Component>,
    /// Admin URL of another Postgres server (default `AGENTOPS_TEST_PG`).
    pub pg_admin_url: Option<String>,
    /// Partitions of each topic (default 4).
    pub partitions: Option<i32>,
    /// Another broker (default `AGENTOPS_TEST_KAFKA`), e.g. a private
    /// [`KafkaCluster`] the test kills and restarts.
    pub brokers: Option<String>,
    /// Dynamic group membership instead of static (`group.instance.id`).
    /// Tests that kill brokers need it: librdkafka fences a static member
    /// that rejoins after its group coordinator moved (FencedInstanceId, a
    /// fatal error; confluentinc/librdkafka#3437).
    pub dynamic_membership: bool,
}

/// Only `processors` processor instances (and the database), with `env`.
pub fn processors_only(processors: usize, env: &[(&str, &str)]) -> StackOptions {
    StackOptions {
        processors,
        skip: vec![
            Component::Gateway,
            Component::Projections,
            Component::QueryApi,
        ],
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

impl StackOptions {
    /// Only the gateway (and its database), with `env`.
    pub fn gateway_only(env: Vec<(String, String)>) -> Self {
        StackOptions {
            env,
            skip: vec![
                Component::Processors,
                Component::Projections,
                Component::QueryApi,
            ],
            ..Default::default()
        }
    }
}

impl Stack {
    pub async fn start(name: &str, opts: StackOptions) -> Result<Stack> {
        let db_url = match &opts.pg_admin_url {
            Some(admin) => create_database_on(admin, name).await?,
            None => create_database(name).await?,
        };
        let name = db_url.rsplit('/').next().unwrap_or(name).to_owned();
        let suffix = name.rsplit('_').next().unwrap_or_default().to_owned();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&db_url)
            .await?;
        agentops_runtime::db::migrate(&pool).await?;
        let org_id = format!("org-{suffix}");
        let partitions = opts.partitions.unwrap_or(4);
        let keys =
            agentops_query_api::admin::create_org_with_keys(&pool, &org_id, "Test org", "e2e")
                .await?;
        let key = |i: usize| keys[i].secret.clone();
        let brokers = opts.brokers.clone().unwrap_or_else(kafka_brokers);

        let mut env = vec![
            ("AGENTOPS_KAFKA__BROKERS".to_owned(), brokers.clone()),
            (
                "AGENTOPS_KAFKA__TOPIC_RAW".to_owned(),
                format!("raw.{name}"),
            ),
            (
                "AGENTOPS_KAFKA__TOPIC_ENRICHED".to_owned(),
                format!("enriched.{name}"),
            ),
            (
                "AGENTOPS_KAFKA__TOPIC_ALERTS".to_owned(),
                format!("alerts.{name}"),
            ),
            (
                "AGENTOPS_KAFKA__TOPIC_DLQ".to_owned(),
                format!("dlq.{name}"),
            ),
            (
                "AGENTOPS_KAFKA__PARTITIONS".to_owned(),
                partitions.to_string(),
            ),
            ("AGENTOPS_DATABASE__URL".to_owned(), db_url.clone()),
            ("AGENTOPS_NOTIFIER_GROUP".to_owned(), format!("n.{name}")),
            // The budget checker reads the projections' offsets under their group.
            ("AGENTOPS_PROJECTION_GROUP".to_owned(), format!("j.{name}")),
            ("AGENTOPS_WEBHOOK_BACKOFF_MS".to_owned(), "100".to_owned()),
            // The outbound guard admits the tests' receivers only (webhook::RECEIVER_IP).
            (
                "AGENTOPS_NOTIFY__ALLOW_DESTINATIONS".to_owned(),
                format!("{}/32", webhook::RECEIVER_IP),
            ),
            // A key of this stack's own: channel credentials are sealed with it.
            (
                "AGENTOPS_SECRETS__KEY".to_owned(),
                agentops_runtime::secrets::new_key("e2e"),
            ),
        ];
        env.extend(opts.env.iter().cloned());
        // Topics up front, so every consumer joins a topic that exists.
        let kcfg = agentops_runtime::config::KafkaConfig {
            brokers,
            partitions,
            ..Default::default()
        };
        let topics: Vec<String> = ["raw", "enriched", "alerts", "dlq"]
            .iter()
            .map(|t| format!("{t}.{name}"))
            .collect();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        agentops_runtime::kafka::ensure_topics(&kcfg, &refs).await?;

        let gw_port = free_port();
        let q_port = free_port();
        let mut stack = Stack {
            name,
            db_url,
            pool,
            org_id,
            ingest_key: key(0),
            read_key: key(1),
            admin_key: key(2),
            gateway_url: format!("http://127.0.0.1:{gw_port}"),
            query_url: format!("http://127.0.0.1:{q_port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            ports: HashMap::new(),
            children: Vec::new(),
            extra_env: env,
            dynamic_membership: opts.dynamic_membership,
        };
        let mut gw_ports = vec![gw_port];
        gw_ports.extend((1..opts.gateways.max(1)).map(|_| free_port()));
        stack.ports.insert(Component::Gateway, gw_ports);
        stack.ports.insert(Component::QueryApi, vec![q_port]);
        let n_proc = opts.processors.max(1);
        stack.ports.insert(
            Component::Processors,
            (0..n_proc).map(|_| free_port()).collect(),
        );
        stack.ports.insert(
            Component::Projections,
            (0..opts.projections.max(1)).map(|_| free_port()).collect(),
        );
        for c in [
            Component::Gateway,
            Component::Processors,
            Component::Projections,
            Component::QueryApi,
        ] {
            if opts.skip.contains(&c) {
                continue;
            }
            for i in 0..stack.ports[&c].len() {
                stack.spawn(c, i)?;
            }
        }
        for c in [
            Component::Gateway,
            Component::Processors,
            Component::Projections,
            Component::QueryApi,
        ] {
            if opts.skip.contains(&c) {
                continue;
            }
            for i in 0..stack.ports[&c].len() {
                stack.settle(c, i).await?;
            }
        }
        Ok(stack)
    }

    /// Set (or replace) an environment variable of every component started
    /// from now on (restarts, [`Stack::command`]), e.g. a rotated secrets key.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// The value of one of the components' environment variables.
    pub fn env(&self, key: &str) -> Option<&str> {
        self.extra_env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A command running `c`'s binary with this stack's configuration (for
    /// one-off subcommands such as `agentops-projections rebuild`).
    pub fn command(&self, c: Component) -> Command {
        let mut cmd = Command::new(bin_dir().join(c.binary()));
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(g) = self.group(c) {
            cmd.env("AGENTOPS_GROUP", g);
        }
        cmd
    }

    /// Each consuming component its own group, unique to this test.
    fn group(&self, c: Component) -> Option<String> {
        match c {
            Component::Processors => Some(format!("p.{}", self.name)),
            Component::Projections => Some(format!("j.{}", self.name)),
            _ => None,
        }
    }

    fn spawn(&mut self, c: Component, instance: usize) -> Result<()> {
        let port = self.ports[&c][instance];
        let path = bin_dir().join(c.binary());
        let log = log_dir().join(format!("{}-{:?}-{instance}.log", self.name, c));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let group = self.group(c);
        let mut cmd = Command::new(&path);
        if let Some(g) = group {
            cmd.env("AGENTOPS_GROUP", g);
        }
        if !self.dynamic_membership {
            // Static membership: a restarted instance takes its own place back.
            cmd.env("AGENTOPS_KAFKA__INSTANCE_ID", format!("{c:?}-{instance}"));
        }
        let child = cmd
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AGENTOPS_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", env_or("AGENTOPS_TEST_LOG", "info"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| {
                format!(
                    "spawn {} (build the workspace binaries first)",
                    path.display()
                )
            })?;
        self.children.push((c, instance, child));
        Ok(())
    }

    /// Wait until a component's `/healthz` answers 200 as that component
    /// (another process that took the port does not count).
    pub async fn wait_healthy(&self, c: Component, instance: usize) -> Result<()> {
        if self
            .healthy_within(c, instance, Duration::from_secs(90))
            .await?
        {
            return Ok(());
        }
        bail!(
            "{c:?}[{instance}] not healthy within 90 s (logs in target/e2e-logs/{}-*)",
            self.name
        )
    }

    /// Whether `/healthz` of this instance answers 200 with its own
    /// component name before `within` passes; false early if the process
    /// has exited.
    async fn healthy_within(
        &self,
        c: Component,
        instance: usize,
        within: Duration,
    ) -> Result<bool> {
        let url = format!("http://127.0.0.1:{}/healthz", self.ports[&c][instance]);
        let name = c.binary().trim_start_matches("agentops-");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(r) = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if r.status().is_success() {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    if body["component"] == name {
                        return Ok(true);
                    }
                }
            }
            if self.pid(c, instance).is_some_and(process_gone) {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }

    /// Wait until a just-spawned instance is healthy. Ports are picked free
    /// but handed over, so under parallel tests another process can take
    /// one first: an instance that exits because its port is taken is
    /// started again on a new port (up to three times).
    async fn settle(&mut self, c: Component, instance: usize) -> Result<()> {
        for _ in 0..3 {
            if self
                .healthy_within(c, instance, Duration::from_secs(90))
                .await?
            {
                return Ok(());
            }
            let log =
                std::fs::read(log_dir().join(format!("{}-{:?}-{instance}.log", self.name, c)))
                    .unwrap_or_default();
            let tail = String::from_utf8_lossy(&log[log.len().saturating_sub(4096)..]).into_owned();
            if !tail.contains("Address already in use") {
                break;
            }
            self.children
                .retain(|(cc, i, _)| !(*cc == c && *i == instance));
            let port = free_port();
            self.ports.get_mut(&c).context("component ports")?[instance] = port;
            if instance == 0 && c == Component::Gateway {
                self.gateway_url = format!("http://127.0.0.1:{port}");
            }
            if instance == 0 && c == Component::QueryApi {
                self.query_url = format!("http://127.0.0.1:{port}");
            }
            self.spawn(c, instance)?;
        }
        bail!(
            "{c:?}[{instance}] not healthy within 90 s (logs in target/e2e-logs/{}-*)",
            self.name
        )
    }

    /// The process id of a running component.
    pub fn pid(&self, c: Component, instance: usize) -> Option<u32> {
        self.children
            .iter()
            .find(|(cc, i, _)| *cc == c && *i == instance)
            .map(|(_, _, child)| child.id())
    }

    fn take_child(&mut self, c: Component, instance: usize) -> Result<Child> {
        let pos = self
            .children
            .iter()
            .position(|(cc, i, _)| *cc == c && *i == instance)
            .context("no such running component")?;
        Ok(self.children.remove(pos).2)
    }

    /// SIGKILL one instance of a component (no shutdown hooks run).
    pub fn kill(&mut self, c: Component, instance: usize) -> Result<()> {
        let mut child = self.take_child(c, instance)?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM one instance and wait for it to exit; returns its exit status.
    pub fn terminate(&mut self, c: Component, instance: usize) -> Result<std::process::ExitStatus> {
        let mut child = self.take_child(c, instance)?;
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        Ok(child.wait()?)
    }

    /// Wait up to `within` for one instance to exit on its own; its exit
    /// status (the instance is then no longer running).
    pub async fn exited(
        &mut self,
        c: Component,
        instance: usize,
        within: Duration,
    ) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let pos = self
                .children
                .iter()
                .position(|(cc, i, _)| *cc == c && *i == instance)
                .context("no such running component")?;
            if let Some(status) = self.children[pos].2.try_wait()? {
                self.children.remove(pos);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{c:?}[{instance}] still running after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What one instance has logged so far (stdout and stderr).
    pub fn log(&self, c: Component, instance: usize) -> Result<String> {
        let path = log_dir().join(format!("{}-{:?}-{instance}.log", self.name, c));
        Ok(std::fs::read_to_string(path)?)
    }

    /// Writes events to this stack's raw topic, Avro-encoded as the gateway
    /// writes them (what the enrich stage consumes).
    pub fn raw_producer(&self) -> Result<EnrichedProducer> {
        let mut p = self.enriched_producer()?;
        p.topic = self.topic("raw");
        Ok(p)
    }

    /// Start one more instance of `c` (scale out) and wait until it is
    /// healthy; returns its instance number.
    pub async fn add_instance(&mut self, c: Component) -> Result<usize> {
        let ports = self.ports.entry(c).or_default();
        ports.push(free_port());
        let instance = ports.len() - 1;
        self.spawn(c, instance)?;
        self.settle(c, instance).await?;
        Ok(instance)
    }

    /// Base URLs of every gateway instance.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.ports[&Component::Gateway]
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
    }

    /// The consumer group of a consuming component (processors' enrich
    /// stage, projections).
    pub fn group_of(&self, c: Component) -> Option<String> {
        self.group(c)
    }

    /// Start an instance again (after `kill`) and wait until it is healthy.
    pub async fn restart(&mut self, c: Component, instance: usize) -> Result<()> {
        self.spawn(c, instance)?;
        self.settle(c, instance).await
    }

    pub fn metrics_url(&self, c: Component, instance: usize) -> String {
        format!("http://127.0.0.1:{}/metrics", self.ports[&c][instance])
    }

    /// The sum of `name`'s series on `c`'s first instance's /metrics whose
    /// labels contain `labels` ("" for all); 0 when not yet written.
    pub async fn metric(&self, c: Component, name: &str, labels: &str) -> Result<f64> {
        let text = self
            .http
            .get(self.metrics_url(c, 0))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                if !(rest.starts_with(' ') || rest.starts_with('{')) {
                    return None;
                }
                let (series, value) = rest.rsplit_once(' ')?;
                series.contains(labels).then(|| value.parse::<f64>().ok())?
            })
            .sum())
    }

    /// POST a JSON body to the gateway with the ingest key; returns (status, body).
    pub async fn post_events(&self, body: &Value) -> Result<(u16, Value)> {
        self.post_raw(
            "/v1/events",
            serde_json::to_vec(body)?,
            Some(&self.ingest_key),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.gateway_url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// POST `{"events": batch}` with the ingest key; returns the status, the
    /// `Retry-After` seconds if any, and the JSON body.
    pub async fn post_batch(&self, batch: &[Value]) -> Result<(u16, Option<u64>, Value)> {
        let r = self
            .http
            .post(format!("{}/v1/events", self.gateway_url))
            .bearer_auth(&self.ingest_key)
            .json(&serde_json::json!({ "events": batch }))
            .send()
            .await?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Ok((status, retry_after, r.json().await.unwrap_or(Value::Null)))
    }

    /// Event ids of this stack's org in the projections, with how many rows
    /// each has (more than one would be a double count).
    pub async fn projected_ids(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_id::text, count(*)::int8 FROM events WHERE org_id = $1 GROUP BY 1",
        )
        .bind(&self.org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Wait until every event id in `acked` is projected and this org's
    /// projected events have not changed for 5 s (records refused with 503
    /// may still arrive later), then check that none is stored twice and that
    /// `agg_1h` counts exactly the stored events. Fails after 120 s without
    /// progress. Returns the projected ids (each with its row count, 1).
    pub async fn projected_once(&self, acked: &[&String]) -> Result<HashMap<String, i64>> {
        let mut last = (usize::MAX, Instant::now());
        let seen = loop {
            let seen = self.projected_ids().await?;
            if seen.len() != last.0 {
                last = (seen.len(), Instant::now());
            }
            let missing = acked.iter().filter(|id| !seen.contains_key(**id)).count();
            if missing == 0 && last.1.elapsed() > Duration::from_secs(5) {
                break seen;
            }
            anyhow::ensure!(
                last.1.elapsed() < Duration::from_secs(120),
                "projections stuck at {} events; {missing} of {} acknowledged events missing",
                seen.len(),
                acked.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let dupes = seen.values().filter(|n| **n != 1).count();
        anyhow::ensure!(dupes == 0, "{dupes} events stored more than once");
        let (agg,): (i64,) =
            sqlx::query_as("SELECT COALESCE(sum(events), 0)::int8 FROM agg_1h WHERE org_id = $1")
                .bind(&self.org_id)
                .fetch_one(&self.pool)
                .await?;
        anyhow::ensure!(
            agg == seen.len() as i64,
            "agg_1h counts {agg} events, {} stored",
            seen.len()
        );
        Ok(seen)
    }

    /// GET a query-API path with the read key.
    pub async fn get(&self, path_and_query: &str) -> Result<Value> {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.query_url))
            .bearer_auth(&self.read_key)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("GET {path_and_query}: {status} {body}");
        }
        Ok(body)
    }

    /// Send events in batches, asserting every batch is fully accepted.
    pub async fn send_all(&self, events: &[Value], batch: usize) -> Result<()> {
        self.ingest().send_all(events, batch).await
    }

    /// A cloneable sender, for sending from a spawned task.
    pub fn ingest(&self) -> Ingest {
        Ingest {
            http: self.http.clone(),
            url: format!("{}/v1/events", self.gateway_url),
            key: self.ingest_key.clone(),
        }
    }

    /// A cloneable sender to gateway instance `i`.
    pub fn ingest_at(&self, i: usize) -> Ingest {
        Ingest {
            http: self.http.clone(),
            url: format!("{}/v1/events", self.gateway_urls()[i]),
            key: self.ingest_key.clone(),
        }
    }

    /// Poll until `check` returns Some, or fail after `timeout`.
    pub async fn eventually<T, F, Fut>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) => last_err = Some(e),
            }
            if Instant::now() >= deadline {
                bail!("{what}: not reached within {timeout:?} (last error: {last_err:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Name of this stack's topic `kind` (raw, enriched, alerts, dlq).
    pub fn topic(&self, kind: &str) -> String {
        format!("{kind}.{}", self.name)
    }

    /// Put an alert record (JSON) on this stack's alerts topic, keyed by
    /// its org, as the evaluators do.
    pub async fn produce_alert(&self, alert: &Value) -> Result<()> {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("message.timeout.ms", "60000")
            .create()?;
        let payload = serde_json::to_vec(alert)?;
        let key = alert["org_id"].as_str().unwrap_or(&self.org_id).to_owned();
        p.send(
            FutureRecord::to(&self.topic("alerts"))
                .key(&key)
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("produce an alert: {e}"))?;
        Ok(())
    }

    /// A producer that writes already-enriched events straight to this
    /// stack's enriched topic (the projections' input), as the processors do.
    pub fn enriched_producer(&self) -> Result<EnrichedProducer> {
        let cfg = agentops_runtime::config::KafkaConfig {
            brokers: kafka_brokers(),
            ..Default::default()
        };
        Ok(EnrichedProducer {
            producer: agentops_runtime::kafka::stage_producer(&cfg)?,
            topic: self.topic("enriched"),
            codec: agentops_schemas::Codec::v1(),
        })
    }

    /// Rows in the events table.
    pub async fn event_rows(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes events to a stack's enriched topic (cloneable, `'static`).
#[derive(Clone)]
pub struct EnrichedProducer {
    producer: rdkafka::producer::FutureProducer,
    topic: String,
    codec: agentops_schemas::Codec,
}

impl EnrichedProducer {
    /// Produce every event and wait for the broker's acknowledgements.
    pub async fn send(&self, events: &[agentops_schemas::AgentEvent]) -> Result<()> {
        let mut records = Vec::with_capacity(events.len());
        for e in events {
            records.push((e.partition_key(), self.codec.encode(e)?));
        }
        let fp = self.codec.fingerprint_hex();
        for r in agentops_runtime::kafka::send_records(
            &self.producer,
            &self.topic,
            &fp,
            &records,
            Duration::from_secs(30),
        )
        .await
        {
            r?;
        }
        Ok(())
    }
}

/// Sends events to a stack's gateway (cloneable, `'static`).
#[derive(Clone)]
pub struct Ingest {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Ingest {
    /// Send events in batches, asserting every batch is fully accepted.
    pub async fn send_all(&self, events: &[Value], batch: usize) -> Result<()> {
        for chunk in events.chunks(batch) {
            let r = self
                .http
                .post(&self.url)
                .bearer_auth(&self.key)
                .json(&serde_json::json!({ "events": chunk }))
                .send()
                .await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != 202 || body["accepted"].as_u64() != Some(chunk.len() as u64) {
                bail!("batch not fully accepted: {status} {body}");
            }
        }
        Ok(())
    }
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}
