//! The production deploy files (`deploy/docker`, `deploy/compose`,
//! `deploy/helm/agentops`) checked offline against the code: no broker, no
//! database, no Docker engine, no cluster.
//!
//! - Every `AGENTOPS_*` variable given to a component is one of its config
//!   keys, derived from the `Config` structs in `<crate>/src/config.rs` and the
//!   runtime structs they nest (figment: `AGENTOPS_<KEY>`, `__` for nesting),
//!   or a variable the code reads itself (`env::var`, clap `env = ...`).
//! - Each stage listens on every interface and its health checks / probes hit
//!   `/healthz` on that port; Services, PDBs, KEDA ScaledObjects, Prometheus
//!   targets and consumer groups agree with what the stages actually use.
//! - The Helm templates are rendered by the small renderer below (the subset
//!   of Go templates the chart keeps to) and parsed as YAML; when `helm` or
//!   `docker compose` is on PATH they are also run (`helm lint`, `helm
//!   template`, `docker compose config -q`), otherwise that part is skipped
//!   with a note.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};

const STAGES: [(&str, &str); 4] = [
    ("agentops-ingest-gateway", "ingest-gateway"),
    ("agentops-processors", "processors"),
    ("agentops-projections", "projections"),
    ("agentops-query-api", "query-api"),
];
const LOADGEN: &str = "agentops-loadgen";
const CHART: &str = "deploy/helm/agentops";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A deploy or source file, which must exist and say something.
fn read(rel: &str) -> String {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(text.trim().len() > 40, "{rel} is (nearly) empty");
    text
}

fn yaml(name: &str, text: &str) -> Value {
    let mut v: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    v.apply_merge()
        .unwrap_or_else(|e| panic!("{name}: merge keys: {e}"));
    v
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    get(v, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path}: not a string in {v:?}"))
}

fn seq<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_sequence)
        .map_or(&[], |s| s.as_slice())
}

/// A scalar as text (YAML numbers and booleans included).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

mod code;
mod compose;
mod helm;
mod template;

use code::*;
use compose::*;
use helm::*;
use template::*;

#[test]
fn compose_and_prometheus_match_the_code() {
    let code = Code::load();
    let compose = yaml("compose.yaml", &read("deploy/compose/compose.yaml"));
    let prometheus = yaml("prometheus.yml", &read("deploy/compose/prometheus.yml"));
    let errors = check_compose(&code, &compose, &prometheus);
    assert!(errors.is_empty(), "{}", errors.join("\n"));

    let services = get(&compose, "services").expect("services");
    let kafka = get(services, "kafka").expect("kafka service");
    assert_eq!(s(kafka, "image"), "apache/kafka:4.1.1");
    let roles = compose_env(kafka)["KAFKA_PROCESS_ROLES"].clone();
    assert!(
        roles.contains("broker") && roles.contains("controller"),
        "KRaft combined node: {roles}"
    );
    assert!(
        get(kafka, "healthcheck.test").is_some(),
        "kafka has no health check"
    );
    let db = get(services, "timescaledb").expect("timescaledb service");
    assert!(s(db, "image").starts_with("timescale/timescaledb:"));
    assert!(
        get(db, "healthcheck.test").is_some(),
        "timescaledb has no health check"
    );
    let migrate = get(services, "migrate").expect("migrate service");
    assert!(command_words(migrate)
        .join(" ")
        .contains("agentops-query-api migrate"));
    for demo in ["demo-org", "demo-fleet"] {
        let profiles = seq(get(services, demo).expect(demo), "profiles");
        assert!(
            profiles.contains(&Value::from("demo")),
            "{demo} is not under the demo profile"
        );
    }
    // The stages that seal channel credentials refuse to start without a
    // key: both get the file secrets-init makes, mounted.
    for svc in ["processors", "query-api"] {
        let svc_def = get(services, svc).expect(svc);
        assert_eq!(
            compose_env(svc_def)
                .get("AGENTOPS_SECRETS__KEY_FILE")
                .map(String::as_str),
            Some("/secrets/key"),
            "{svc} has no secrets key"
        );
        assert!(
            seq(svc_def, "volumes").contains(&Value::from("secrets:/secrets:ro")),
            "{svc} does not mount the secrets volume"
        );
    }
    // The query API's live feed tails Kafka: it gets the brokers the stages use.
    assert_eq!(
        compose_env(get(services, "query-api").expect("query-api"))
            .get("AGENTOPS_KAFKA__BROKERS")
            .map(String::as_str),
        Some("kafka:9092"),
        "the query API has no AGENTOPS_KAFKA__BROKERS (live feed)"
    );
    let init = command_words(get(services, "secrets-init").expect("secrets-init")).join(" ");
    assert!(
        init.contains("test -s /secrets/key"),
        "secrets-init keeps an existing key: {init}"
    );
    let fleet = command_words(get(services, "demo-fleet").unwrap()).join(" ");
    assert!(
        fleet.contains("agentops-loadgen demo --gateway http://ingest-gateway:8080"),
        "{fleet}"
    );

    // Topics: the names the code uses, production partition counts, retention.
    let script =
        command_words(get(services, "kafka-topics").expect("kafka-topics service")).join(" ");
    assert!(script.contains("kafka-topics.sh"), "{script}");
    let topics = [
        ("topic_raw", 12, Some(7)),
        ("topic_enriched", 12, Some(30)),
        ("topic_alerts", 3, None),
        ("topic_dlq", 3, Some(30)),
    ];
    for (key, partitions, days) in topics {
        let topic = &code.kafka_defaults[key];
        let at = script
            .find(&format!("--topic {topic} "))
            .unwrap_or_else(|| panic!("kafka-topics: {topic} is not created"));
        let line = &script[at..script[at..]
            .find(" create ")
            .map_or(script.len(), |e| at + e)];
        assert!(
            line.contains(&format!("--partitions {partitions} ")),
            "{topic}: {line}"
        );
        if let Some(days) = days {
            let ms = days * 24 * 3600 * 1000_u64;
            assert!(
                line.contains(&format!("retention.ms={ms}")),
                "{topic}: {line}"
            );
        }
    }

    // The compose health checks run curl inside the image: it must be there.
    let dockerfile = read("deploy/docker/Dockerfile");
    let runtime_stage = &dockerfile[dockerfile.rfind("\nFROM ").expect("FROM")..];
    assert!(
        runtime_stage.contains("curl"),
        "runtime image lacks curl for the health checks"
    );
}

#[test]
fn helm_chart_renders_and_matches_the_code() {
    let code = Code::load();
    let chart = yaml("Chart.yaml", &read(&format!("{CHART}/Chart.yaml")));
    assert_eq!(s(&chart, "apiVersion"), "v2");
    let version = read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("workspace version");
    assert_eq!(
        s(&chart, "appVersion"),
        version,
        "appVersion is the workspace version"
    );

    let docs = render_chart("{}");
    let errors = check_helm(&code, &docs);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The stages that seal channel credentials get the key from a Secret.
    for name in ["agentops-processors", "agentops-query-api"] {
        let d = named(&docs, "Deployment", name).unwrap_or_else(|| panic!("{name}"));
        let refs: Vec<String> = seq(d, "spec.template.spec.containers")
            .iter()
            .flat_map(|c| seq(c, "env"))
            .filter(|e| s(e, "name") == "AGENTOPS_SECRETS__KEY")
            .map(|e| s(e, "valueFrom.secretKeyRef.name").to_owned())
            .collect();
        assert_eq!(refs, ["agentops-secrets"], "{name}: the secrets key");
    }
    // The query API's live feed tails Kafka: the chart's brokers, whatever they are set to.
    for (overrides, brokers) in [
        ("{}", "kafka-bootstrap.kafka.svc:9092"),
        ("kafka: {brokers: 'b1:9092,b2:9092'}", "b1:9092,b2:9092"),
    ] {
        let docs = render_chart(overrides);
        let d = named(&docs, "Deployment", "agentops-query-api").expect("query API");
        let mut errs = Vec::new();
        let env = container_env(
            &docs,
            &seq(d, "spec.template.spec.containers")[0],
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            env.get("AGENTOPS_KAFKA__BROKERS").map(String::as_str),
            Some(brokers),
            "the query API's AGENTOPS_KAFKA__BROKERS with {overrides}"
        );
        let errors = check_helm(&code, &docs);
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }
    assert_eq!(
        kind(&docs, "ScaledObject").len(),
        2,
        "KEDA scales processors and projections"
    );
    assert!(
        kind(&docs, "Secret").is_empty(),
        "the database Secret is created outside by default"
    );

    // The other branches: no KEDA (fixed replicas), a chart-made Secret, extra env.
    let docs = render_chart(
        "keda: {enabled: false}\n\
         database: {createSecret: true, url: 'postgres://u:p@db:5432/agentops'}\n\
         secrets: {createSecret: true, key: 'k1:c2VjcmV0'}\n\
         processors: {env: {AGENTOPS_BATCH_MAX: '500'}}\n",
    );
    let errors = check_helm(&code, &docs);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(kind(&docs, "ScaledObject").is_empty());
    let secret = named(&docs, "Secret", "agentops-database").expect("chart-made Secret");
    assert_eq!(
        s(secret, "stringData.url"),
        "postgres://u:p@db:5432/agentops"
    );
    let key = named(&docs, "Secret", "agentops-secrets").expect("chart-made secrets Secret");
    assert_eq!(s(key, "stringData.key"), "k1:c2VjcmV0");
    for d in kind(&docs, "Deployment") {
        assert!(
            get(d, "spec.replicas").is_some(),
            "without KEDA every Deployment sets replicas"
        );
    }
}

/// The checks fail on what they are meant to catch (so a pass means something).
#[test]
fn checks_reject_broken_files() {
    let code = Code::load();
    let docs = render_chart("gateway: {env: {AGENTOPS_NOT_A_KEY: 'x'}}\n");
    let errors = check_helm(&code, &docs).join("\n");
    assert!(errors.contains("AGENTOPS_NOT_A_KEY"), "{errors}");
    // A misspelt Kafka key of the query API (its live feed reads `kafka.*`).
    let docs = render_chart("queryApi: {env: {AGENTOPS_KAFKA__BROKER: 'k:9092'}}\n");
    assert!(check_helm(&code, &docs)
        .join("\n")
        .contains("AGENTOPS_KAFKA__BROKER "));
    // Rendered manifests edited the way a careless change would.
    let cases = [
        (
            "ConfigMap",
            "agentops-projections",
            "data",
            "AGENTOPS_LISTEN",
            "127.0.0.1:9102",
            "not reachable",
        ),
        (
            "ConfigMap",
            "agentops-gateway",
            "data",
            "AGENTOPS_LISTEN",
            "0.0.0.0:9000",
            "readinessProbe on port 8080, listen on 9000",
        ),
        (
            "ConfigMap",
            "agentops-processors",
            "data",
            "AGENTOPS_PROJECTION_GROUP",
            "x",
            "projection_group",
        ),
        (
            "ConfigMap",
            "agentops-processors",
            "data",
            "AGENTOPS_GROUP",
            "x",
            "trigger consumerGroup",
        ),
        (
            "ConfigMap",
            "agentops-projections",
            "data",
            "AGENTOPS_KAFKA__TOPIC_ENRICHED",
            "x",
            "trigger topic",
        ),
        (
            "ConfigMap",
            "agentops-query-api",
            "data",
            "AGENTOPS_KAFKA__BROKERS",
            "elsewhere:9092",
            "the query API's live feed reads kafka__brokers",
        ),
        (
            "ConfigMap",
            "agentops-query-api",
            "data",
            "AGENTOPS_KAFKA__TOPIC_ALERTS",
            "x",
            "the query API's live feed reads kafka__topic_alerts",
        ),
        (
            "PodDisruptionBudget",
            "agentops-query-api",
            "spec.selector.matchLabels",
            "app.kubernetes.io/component",
            "x",
            "0 PodDisruptionBudgets",
        ),
        (
            "Deployment",
            "agentops-processors",
            "spec",
            "replicas",
            "2",
            "sets replicas",
        ),
        (
            "Service",
            "agentops-gateway",
            "spec",
            "selector",
            "{}",
            "no Service",
        ),
    ];
    for (kind, name, parent, key, value, want) in cases {
        let mut docs = render_chart("{}");
        let mut node = docs
            .iter_mut()
            .find(|d| s(d, "kind") == kind && s(d, "metadata.name") == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        for k in parent.split('.') {
            node = node.get_mut(k).expect(k);
        }
        let value = if value == "{}" {
            Value::Mapping(Mapping::new())
        } else {
            value.into()
        };
        node.as_mapping_mut()
            .expect(parent)
            .insert(key.into(), value);
        let errors = check_helm(&code, &docs).join("\n");
        assert!(
            errors.contains(want),
            "{kind} {name} {key}: want {want:?} in:\n{errors}"
        );
    }

    let mut compose = yaml("compose.yaml", &read("deploy/compose/compose.yaml"));
    let prometheus = yaml("prometheus.yml", &read("deploy/compose/prometheus.yml"));
    let svc = compose["services"]["processors"]
        .as_mapping_mut()
        .expect("processors");
    let env = svc
        .get_mut("environment")
        .and_then(Value::as_mapping_mut)
        .expect("env");
    env.insert("AGENTOPS_KAFKA__BROKER".into(), "kafka:9092".into());
    env.insert("AGENTOPS_LISTEN".into(), "0.0.0.0:9111".into());
    let errors = check_compose(&code, &compose, &prometheus).join("\n");
    assert!(errors.contains("AGENTOPS_KAFKA__BROKER "), "{errors}");
    assert!(errors.contains("health check"), "{errors}");
    assert!(errors.contains("no target processors:9111"), "{errors}");

    // A query API without the brokers: its live feed would dial loopback.
    let mut compose = yaml("compose.yaml", &read("deploy/compose/compose.yaml"));
    compose["services"]["query-api"]["environment"]
        .as_mapping_mut()
        .expect("query-api env")
        .remove("AGENTOPS_KAFKA__BROKERS");
    let errors = check_compose(&code, &compose, &prometheus).join("\n");
    assert!(
        errors.contains("the query API's live feed reads kafka__brokers \"127.0.0.1:9092\""),
        "{errors}"
    );
}

#[test]
fn dockerfile_builds_every_binary() {
    let dockerfile = read("deploy/docker/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages[0].starts_with("FROM rust:"), "{stages:?}");
    let last = stages[stages.len() - 1];
    assert!(
        last.starts_with("FROM debian:") && last.contains("slim"),
        "{last}"
    );
    assert!(dockerfile.contains("cargo build --release --locked"));
    for crate_dir in [
        "ingest-gateway",
        "processors",
        "projections",
        "query-api",
        "loadgen",
    ] {
        let manifest = read(&format!("{crate_dir}/Cargo.toml"));
        let bin = manifest
            .split("[[bin]]")
            .nth(1)
            .and_then(|b| b.lines().find_map(|l| l.strip_prefix("name = \"")))
            .map(|n| n.trim_end_matches('"'))
            .unwrap_or_else(|| panic!("{crate_dir}: no [[bin]] name"));
        assert!(
            dockerfile.contains(&format!("target/release/{bin}")),
            "{bin} not copied"
        );
        assert!(dockerfile.contains(&format!("-p {bin}")), "{bin} not built");
    }
    let runtime = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    assert!(runtime.contains("ca-certificates"));
    // The console's Vite build, where the query API looks for it.
    assert!(dockerfile.contains("npm ci") && dockerfile.contains("npm run build"));
    let console_dir = runtime
        .lines()
        .find_map(|l| l.strip_prefix("ENV AGENTOPS_CONSOLE_DIR="))
        .expect("the runtime stage sets AGENTOPS_CONSOLE_DIR");
    assert!(
        runtime.contains(&format!(
            "COPY --from=console /console/dist/ {console_dir}/"
        )),
        "the console build is not copied to {console_dir}"
    );
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "USER {user}"
    );
    let ignore = read(".dockerignore");
    assert!(
        ignore.contains("target/"),
        ".dockerignore keeps target/ out"
    );
    let readme = read("deploy/README.md");
    for topic in [
        "agentops.events.raw",
        "agentops.events.enriched",
        "agentops.alerts",
        "agentops.dlq",
    ] {
        assert!(
            readme.contains(topic),
            "deploy/README.md does not document {topic}"
        );
    }
}

/// The real tools, where this machine has them.
#[test]
fn real_tools_when_installed() {
    let has = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let run = |cmd: &str, args: &[&str]| {
        let out = Command::new(cmd)
            .args(args)
            .current_dir(root())
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    if has("docker", &["compose", "version"]) {
        let f = "deploy/compose/compose.yaml";
        run("docker", &["compose", "-f", f, "config", "-q"]);
        run(
            "docker",
            &["compose", "-f", f, "--profile", "demo", "config", "-q"],
        );
    } else {
        eprintln!("note: `docker compose` is not installed; compose.yaml checked by parsing only");
    }
    if has("helm", &["version"]) {
        run("helm", &["lint", "--strict", CHART]);
        let code = Code::load();
        let sets = [
            ("keda.enabled=true", "{}"),
            (
                "keda.enabled=false,database.createSecret=true,database.url=postgres://x",
                "{keda: {enabled: false}, database: {createSecret: true, url: 'postgres://x'}}",
            ),
        ];
        for (set, overrides) in sets {
            let out = run("helm", &["template", "agentops", CHART, "--set", set]);
            let docs = manifests("helm template", &out);
            let errors = check_helm(&code, &docs);
            let errors = errors.join("\n");
            assert!(errors.is_empty(), "helm template --set {set}:\n{errors}");
            // This test's renderer gives what helm gives.
            let key = |d: &Value| format!("{}/{}", s(d, "kind"), s(d, "metadata.name"));
            let sorted = |mut docs: Vec<Value>| {
                docs.sort_by_key(key);
                docs
            };
            assert_eq!(sorted(docs), sorted(render_chart(overrides)), "--set {set}");
        }
    } else {
        eprintln!(
            "note: `helm` is not installed; the chart checked with this test's renderer only"
        );
    }
}
