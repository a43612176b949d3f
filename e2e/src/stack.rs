//! A stack: one test's database and topics with every component running as
//! its own process. Starting one is here; what a test does with it is in the
//! submodules (`process`: the components' processes, `http`: the gateway's
//! and query API's endpoints, `produce`: records straight onto its topics,
//! `projected`: what the projections stored).

mod http;
mod process;
mod produce;
mod projected;

pub use http::Ingest;
pub use produce::EnrichedProducer;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use sqlx::PgPool;

use crate::db::{create_database, create_database_on};
use crate::env::{free_port, kafka_brokers};
use crate::webhook;

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
    /// Where each instance's latest start begins in its (appended) log.
    log_from: HashMap<(Component, usize), u64>,
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
    /// [`KafkaCluster`](crate::KafkaCluster) the test kills and restarts.
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
        clear_of_midnight().await;
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
            log_from: HashMap::new(),
            extra_env: with_console(env)?,
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

    /// Each consuming component its own group, unique to this test.
    fn group(&self, c: Component) -> Option<String> {
        match c {
            Component::Processors => Some(format!("p.{}", self.name)),
            Component::Projections => Some(format!("j.{}", self.name)),
            _ => None,
        }
    }

    /// The consumer group of a consuming component (processors' enrich
    /// stage, projections).
    pub fn group_of(&self, c: Component) -> Option<String> {
        self.group(c)
    }

    /// Name of this stack's topic `kind` (raw, enriched, alerts, dlq).
    pub fn topic(&self, kind: &str) -> String {
        format!("{kind}.{}", self.name)
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
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The query API serves the console's build from `console_dir`: unless the
/// test chose one, a small stand-in build (the real one needs npm; its own
/// checks are the console's Vitest and build steps).
fn with_console(mut env: Vec<(String, String)>) -> anyhow::Result<Vec<(String, String)>> {
    const KEY: &str = "AGENTOPS_CONSOLE_DIR";
    if env.iter().any(|(k, _)| k == KEY) {
        return Ok(env);
    }
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("agentops-console-{}", std::process::id()))
    });
    if !dir.join("index.html").exists() {
        std::fs::create_dir_all(dir.join("assets"))?;
        std::fs::write(dir.join("assets/app.js"), "")?;
        std::fs::write(
            dir.join("index.html"),
            r#"<!doctype html><title>console</title><script type="module" src="/console/assets/app.js"></script>"#,
        )?;
    }
    env.push((KEY.into(), dir.display().to_string()));
    Ok(env)
}

/// Budgets count per UTC day, week and month, and `cost_per_day` rules
/// since UTC midnight: a test whose events land before midnight and whose
/// budget or check runs after it would see the spend in another period. A
/// stack started in the last 3 minutes of a UTC day waits for the next one.
async fn clear_of_midnight() {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    let left = 86_400 - i64::from(now.num_seconds_from_midnight());
    if left <= 180 {
        eprintln!("{left} s to UTC midnight: waiting for the new day (periods start there)");
        tokio::time::sleep(std::time::Duration::from_secs(left.unsigned_abs() + 2)).await;
    }
}
