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

// ---------------------------------------------------------------------------
// What the code accepts.

type Structs = BTreeMap<String, Vec<(String, String)>>;

/// The serde-deserializable named-field structs of a Rust source:
/// name -> [(field, type)].
fn structs(src: &str, file: &str) -> Structs {
    let mut out = Structs::new();
    let mut attrs: Vec<&str> = Vec::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|r| r.strip_suffix(" {"))
        else {
            if line.starts_with("#[") {
                attrs.push(line);
            } else if !line.starts_with("//") {
                attrs.clear();
            }
            continue;
        };
        let serde = attrs
            .iter()
            .any(|a| a.starts_with("#[derive") && a.contains("Deserialize"));
        let mut fields = Vec::new();
        for l in lines.by_ref() {
            let l = l.trim();
            if l == "}" {
                break;
            }
            attrs.push(l);
            if l.is_empty() || l.starts_with("//") || l.starts_with('#') {
                continue;
            }
            let l = l
                .strip_prefix("pub(crate) ")
                .or(l.strip_prefix("pub "))
                .unwrap_or(l);
            if let Some((f, ty)) = l.split_once(':') {
                if f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    fields.push((f.to_owned(), ty.trim().trim_end_matches(',').to_owned()));
                }
            }
        }
        if serde {
            let odd = attrs.iter().find(|a| {
                a.starts_with("#[serde") && (a.contains("rename") || a.contains("flatten"))
            });
            assert!(
                odd.is_none(),
                "{file}: {name}: {odd:?} changes config keys; teach this test"
            );
            out.insert(name.to_owned(), fields);
        }
        attrs.clear();
    }
    out
}

/// `field: "literal".into()` lines of `impl Default for <ty>`.
fn string_defaults(src: &str, ty: &str) -> BTreeMap<String, String> {
    let start = src
        .find(&format!("impl Default for {ty} {{"))
        .unwrap_or_else(|| panic!("no `impl Default for {ty}`"));
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
    body.lines()
        .filter_map(|l| {
            let (f, rest) = l.trim().split_once(": \"")?;
            let (lit, _) = rest.split_once('"')?;
            Some((f.to_owned(), lit.to_owned()))
        })
        .collect()
}

/// `AGENTOPS_*` names the code reads itself: `env::var("...")`, clap `env = "..."`.
fn read_vars(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            read_vars(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&path).expect("source");
            for marker in ["env::var(\"AGENTOPS_", "env = \"AGENTOPS_"] {
                for (i, _) in src.match_indices(marker) {
                    let name = &src[i + marker.len() - "AGENTOPS_".len()..];
                    let end = name.find('"').expect("closing quote");
                    out.insert(name[..end].to_owned());
                }
            }
        }
    }
}

/// Per binary: the environment variables it understands and its string defaults.
struct Code {
    vars: BTreeMap<&'static str, BTreeSet<String>>,
    defaults: BTreeMap<&'static str, BTreeMap<String, String>>,
    kafka_defaults: BTreeMap<String, String>,
}

impl Code {
    fn load() -> Code {
        let runtime_src = root().join("runtime/src");
        let mut runtime = Structs::new();
        let mut stack = vec![runtime_src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("runtime/src") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let src = std::fs::read_to_string(&path).expect("source");
                    for (name, fields) in structs(&src, &path.display().to_string()) {
                        let dup = runtime.insert(name.clone(), fields);
                        assert!(dup.is_none(), "two runtime structs named {name}");
                    }
                }
            }
        }
        let mut common = BTreeSet::new();
        read_vars(&runtime_src, &mut common);
        assert!(
            common.contains("AGENTOPS_LOG_FORMAT"),
            "runtime no longer reads AGENTOPS_LOG_FORMAT?"
        );
        let mut vars = BTreeMap::new();
        let mut defaults = BTreeMap::new();
        for (bin, dir) in STAGES {
            let file = format!("{dir}/src/config.rs");
            let src = read(&file);
            let mut known = runtime.clone();
            known.extend(structs(&src, &file));
            let config = known
                .remove("Config")
                .unwrap_or_else(|| panic!("{file}: no Config"));
            let mut set = common.clone();
            config_keys(&config, &known, "AGENTOPS_", &mut set);
            read_vars(&root().join(dir).join("src"), &mut set);
            for key in ["AGENTOPS_LISTEN", "AGENTOPS_DATABASE__STORAGE__MODE"] {
                assert!(set.contains(key), "{file}: no {key}? parser out of date");
            }
            vars.insert(bin, set);
            defaults.insert(bin, string_defaults(&src, "Config"));
        }
        let mut loadgen = common;
        read_vars(&root().join("loadgen/src"), &mut loadgen);
        vars.insert(LOADGEN, loadgen);
        let kafka_defaults = string_defaults(&read("runtime/src/config.rs"), "KafkaConfig");
        Code {
            vars,
            defaults,
            kafka_defaults,
        }
    }

    /// The value a stage runs with: its environment, else the code's default.
    fn effective(&self, bin: &str, env: &BTreeMap<String, String>, key: &str) -> String {
        if let Some(v) = env.get(&format!("AGENTOPS_{}", key.to_uppercase())) {
            return v.clone();
        }
        let d = match key.strip_prefix("kafka__") {
            Some(k) => self.kafka_defaults.get(k),
            None => self.defaults[bin].get(key),
        };
        d.unwrap_or_else(|| panic!("{bin}: no default for {key}"))
            .clone()
    }

    /// Unknown variables of one component, as messages.
    fn unknown(&self, what: &str, bin: &str, env: &BTreeMap<String, String>) -> Vec<String> {
        let allowed = &self.vars[bin];
        env.keys()
            .filter(|k| k.starts_with("AGENTOPS_") && !allowed.contains(*k))
            .map(|k| format!("{what} ({bin}): {k} is not a config key or variable it reads"))
            .collect()
    }
}

fn config_keys(
    fields: &[(String, String)],
    known: &Structs,
    prefix: &str,
    out: &mut BTreeSet<String>,
) {
    for (field, ty) in fields {
        let key = format!("{prefix}{}", field.to_uppercase());
        let last = ty.rsplit("::").next().unwrap_or(ty);
        match known.get(last) {
            Some(nested) => config_keys(nested, known, &format!("{key}__"), out),
            None => {
                out.insert(key);
            }
        }
    }
}

/// `0.0.0.0:8080` -> 8080, for a listen address every interface can reach.
fn listen_port(what: &str, listen: &str) -> Result<u16, String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or(format!("{what}: listen {listen:?} has no port"))?;
    if !matches!(host, "0.0.0.0" | "[::]") {
        return Err(format!(
            "{what}: listen {listen:?} is not reachable from outside the container"
        ));
    }
    port.parse()
        .map_err(|_| format!("{what}: listen {listen:?}: bad port"))
}

// ---------------------------------------------------------------------------
// Docker Compose and Prometheus.

fn compose_env(svc: &Value) -> BTreeMap<String, String> {
    match get(svc, "environment") {
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| (text(k).expect("env name"), text(v).unwrap_or_default()))
            .collect(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|e| {
                let e = e.as_str().expect("KEY=VALUE");
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Every word of a service's entrypoint and command (scripts included).
fn command_words(svc: &Value) -> Vec<String> {
    let mut words = Vec::new();
    for key in ["entrypoint", "command"] {
        match get(svc, key) {
            Some(Value::String(c)) => words.extend(c.split_whitespace().map(str::to_owned)),
            Some(Value::Sequence(list)) => {
                for part in list.iter().filter_map(Value::as_str) {
                    words.extend(part.split_whitespace().map(str::to_owned));
                }
            }
            _ => {}
        }
    }
    words
}

/// The AgentOps binary a service runs, if any.
fn binary_of(words: &[String]) -> Option<&'static str> {
    let known: Vec<&'static str> = STAGES.iter().map(|s| s.0).chain([LOADGEN]).collect();
    let found: BTreeSet<&'static str> = words
        .iter()
        .filter_map(|w| known.iter().copied().find(|k| w == k))
        .collect();
    assert!(
        found.len() <= 1,
        "one service runs several binaries: {found:?}"
    );
    found.into_iter().next()
}

fn check_compose(code: &Code, compose: &Value, prometheus: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let services = get(compose, "services")
        .and_then(Value::as_mapping)
        .expect("compose: services");
    let mut effective = BTreeMap::new();
    for (name, svc) in services {
        let name = name.as_str().expect("service name");
        let env = compose_env(svc);
        match binary_of(&command_words(svc)) {
            Some(bin) => errors.extend(code.unknown(&format!("compose {name}"), bin, &env)),
            None if env.keys().any(|k| k.starts_with("AGENTOPS_")) => errors.push(format!(
                "compose {name}: AGENTOPS_* set but no agentops binary run"
            )),
            None => {}
        }
    }
    let targets: BTreeSet<(String, u16)> = seq(prometheus, "scrape_configs")
        .iter()
        .flat_map(|job| {
            let dns = seq(job, "dns_sd_configs").iter().flat_map(|d| {
                let port = get(d, "port").and_then(Value::as_u64).unwrap_or(0) as u16;
                seq(d, "names")
                    .iter()
                    .map(move |n| (text(n).unwrap_or_default(), port))
            });
            let statics = seq(job, "static_configs").iter().flat_map(|c| {
                seq(c, "targets").iter().filter_map(|t| {
                    let (h, p) = t.as_str()?.rsplit_once(':')?;
                    Some((h.to_owned(), p.parse().ok()?))
                })
            });
            dns.chain(statics).collect::<Vec<_>>()
        })
        .collect();
    for (bin, service) in STAGES {
        let Some(svc) = services.get(service) else {
            errors.push(format!("compose: no service {service}"));
            continue;
        };
        if binary_of(&command_words(svc)) != Some(bin) {
            errors.push(format!("compose {service}: does not run {bin}"));
        }
        let env = compose_env(svc);
        let port = match env.get("AGENTOPS_LISTEN").map(|l| listen_port(service, l)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                errors.push(format!("compose {e}"));
                continue;
            }
            None => {
                errors.push(format!(
                    "compose {service}: no AGENTOPS_LISTEN (default is loopback)"
                ));
                continue;
            }
        };
        let check = seq(svc, "healthcheck.test")
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        if !check.contains(&format!(":{port}/healthz")) {
            errors.push(format!(
                "compose {service}: health check {check:?} is not /healthz on {port}"
            ));
        }
        if !matches!(
            get(svc, "restart").and_then(Value::as_str),
            Some("unless-stopped" | "always")
        ) {
            errors.push(format!("compose {service}: no restart policy"));
        }
        if !targets.contains(&(service.to_owned(), port)) {
            errors.push(format!("prometheus.yml: no target {service}:{port}"));
        }
        effective.insert(bin, env);
    }
    if errors.is_empty() {
        errors.extend(check_groups(code, "compose", &effective));
    }
    errors
}

/// The processors' `projection_group` names the projections' consumer group.
fn check_groups(
    code: &Code,
    what: &str,
    env: &BTreeMap<&str, BTreeMap<String, String>>,
) -> Vec<String> {
    let (p, j) = ("agentops-processors", "agentops-projections");
    let pg = code.effective(p, &env[p], "projection_group");
    let g = code.effective(j, &env[j], "group");
    if pg == g {
        Vec::new()
    } else {
        vec![format!(
            "{what}: processors' projection_group {pg:?} != projections' group {g:?}"
        )]
    }
}

// ---------------------------------------------------------------------------
// Helm: the renderer for the chart's template subset, then the manifests.

enum Node {
    Text(String),
    Expr(String),
    If(String, Vec<Node>, Vec<Node>),
}

fn lex(src: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let (mut rest, mut trim_next) = (src, false);
    while let Some(open) = rest.find("{{") {
        let mut before = rest[..open].to_owned();
        let close = rest[open..].find("}}").expect("unclosed {{") + open;
        let mut action = &rest[open + 2..close];
        if trim_next {
            before = before.trim_start().to_owned();
        }
        if let Some(a) = action.strip_prefix("- ") {
            before = before.trim_end().to_owned();
            action = a;
        }
        trim_next = action.ends_with(" -");
        action = action.strip_suffix(" -").unwrap_or(action).trim();
        out.push((false, before));
        if !action.starts_with("/*") {
            out.push((true, action.to_owned()));
        }
        rest = &rest[close + 2..];
    }
    out.push((
        false,
        if trim_next { rest.trim_start() } else { rest }.to_owned(),
    ));
    out
}

fn parse(toks: &mut std::vec::IntoIter<(bool, String)>) -> (Vec<Node>, Option<String>) {
    let mut nodes = Vec::new();
    while let Some((action, t)) = toks.next() {
        if !action {
            nodes.push(Node::Text(t));
        } else if let Some(cond) = t.strip_prefix("if ") {
            let (then, end) = parse(toks);
            let els = match end.as_deref() {
                Some("else") => parse(toks).0,
                Some("end") => Vec::new(),
                other => panic!("`if {cond}` closed by {other:?}"),
            };
            nodes.push(Node::If(cond.to_owned(), then, els));
        } else if t == "end" || t == "else" {
            return (nodes, Some(t));
        } else {
            let word = t.split_whitespace().next().unwrap_or("");
            assert!(
                !matches!(
                    word,
                    "range" | "with" | "define" | "include" | "template" | "tpl" | "else if"
                ),
                "`{{{{ {t} }}}}`: outside the template subset this test renders"
            );
            nodes.push(Node::Expr(t));
        }
    }
    (nodes, None)
}

struct Ctx<'a> {
    values: &'a Value,
    chart: &'a Value,
    release: &'a str,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

impl Ctx<'_> {
    fn term(&self, t: &str) -> Value {
        if let Some(p) = t.strip_prefix(".Values.") {
            return get(self.values, p)
                .unwrap_or_else(|| panic!("values.yaml has no {p}"))
                .clone();
        }
        if let Some(k) = t.strip_prefix(".Chart.") {
            let key = k[..1].to_lowercase() + &k[1..];
            return get(self.chart, &key)
                .unwrap_or_else(|| panic!("Chart.yaml has no {key}"))
                .clone();
        }
        match t {
            ".Release.Name" => Value::from(self.release),
            ".Release.Namespace" => Value::from("default"),
            _ if t.starts_with('"') => Value::from(t.trim_matches('"')),
            _ => t
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| panic!("unknown term {t}")),
        }
    }

    fn eval(&self, pipeline: &str) -> Value {
        let mut acc: Option<Value> = None;
        for stage in pipeline.split('|') {
            let words: Vec<&str> = stage.split_whitespace().collect();
            let mut args: Vec<Value> = words[1..].iter().map(|w| self.term(w)).collect();
            args.extend(acc.take());
            let one = |args: &[Value]| args.last().cloned().expect("argument");
            acc = Some(match words[0] {
                "quote" => Value::from(serde_json::to_string(&scalar(&one(&args))).expect("json")),
                "toYaml" => {
                    Value::from(serde_yaml::to_string(&one(&args)).expect("yaml").trim_end())
                }
                "nindent" | "indent" => {
                    let n = args[0].as_u64().expect("indent width") as usize;
                    let body = scalar(&args[1]);
                    let pad = " ".repeat(n);
                    let lines: Vec<String> = body.lines().map(|l| format!("{pad}{l}")).collect();
                    let nl = if words[0] == "nindent" { "\n" } else { "" };
                    Value::from(format!("{nl}{}", lines.join("\n")))
                }
                "default" => {
                    let v = args.get(1).cloned().unwrap_or(Value::Null);
                    if truthy(&v) {
                        v
                    } else {
                        args[0].clone()
                    }
                }
                "not" => Value::from(!truthy(&one(&args))),
                t if t.starts_with('.') || t.starts_with('"') => {
                    assert!(words.len() == 1, "`{stage}`: unknown function");
                    self.term(t)
                }
                f => panic!("`{pipeline}`: function {f} is outside the renderer's subset"),
            });
        }
        acc.expect("empty action")
    }

    fn render(&self, nodes: &[Node], out: &mut String) {
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Expr(e) => out.push_str(&scalar(&self.eval(e))),
                Node::If(c, then, els) => {
                    self.render(if truthy(&self.eval(c)) { then } else { els }, out)
                }
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    text(v).unwrap_or_else(|| panic!("{v:?} is not a scalar (pipe it through toYaml)"))
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The chart's manifests with `values.yaml` merged with `overrides`.
fn render_chart(overrides: &str) -> Vec<Value> {
    let chart = yaml("Chart.yaml", &read(&format!("{CHART}/Chart.yaml")));
    let mut values = yaml("values.yaml", &read(&format!("{CHART}/values.yaml")));
    merge(&mut values, &yaml("overrides", overrides));
    let ctx = Ctx {
        values: &values,
        chart: &chart,
        release: "agentops",
    };
    let dir = root().join(CHART).join("templates");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("templates/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "NOTES.txt" {
            continue;
        }
        assert!(
            name.ends_with(".yaml"),
            "{name}: only .yaml templates are rendered here"
        );
        let src = std::fs::read_to_string(&file).expect("template");
        let (nodes, end) = parse(&mut lex(&src).into_iter());
        assert!(end.is_none(), "{name}: stray {end:?}");
        let mut out = String::new();
        ctx.render(&nodes, &mut out);
        docs.extend(manifests(&name, &out));
    }
    docs
}

/// The documents of a multi-document YAML stream (`---` lines between).
fn manifests(what: &str, text: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("a document");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.iter()
        .map(|d| serde_yaml::from_str::<Value>(d).unwrap_or_else(|e| panic!("{what}: {e}\n{d}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| get(d, "kind").and_then(Value::as_str) == Some(k))
        .collect()
}

fn named<'a>(docs: &'a [Value], k: &str, name: &str) -> Option<&'a Value> {
    kind(docs, k)
        .into_iter()
        .find(|d| get(d, "metadata.name").and_then(Value::as_str) == Some(name))
}

fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(Value::Mapping(sel)), Some(Value::Mapping(labels))) = (selector, labels) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A container's environment: `env` entries and its ConfigMaps' data.
fn container_env(docs: &[Value], c: &Value, errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in seq(c, "envFrom") {
        let name = s(from, "configMapRef.name");
        let Some(cm) = named(docs, "ConfigMap", name) else {
            errors.push(format!("envFrom: no ConfigMap {name}"));
            continue;
        };
        for (k, v) in get(cm, "data")
            .and_then(Value::as_mapping)
            .unwrap_or(&Mapping::new())
        {
            match v {
                Value::String(v) => {
                    env.insert(text(k).unwrap_or_default(), v.clone());
                }
                _ => errors.push(format!("ConfigMap {name}: {k:?} is not a string")),
            }
        }
    }
    for e in seq(c, "env") {
        let v = get(e, "value")
            .and_then(text)
            .unwrap_or_else(|| "<from secret>".into());
        env.insert(s(e, "name").to_owned(), v);
        // A Secret the chart makes holds the key that is referenced.
        if let Some(r) = get(e, "valueFrom.secretKeyRef") {
            if let Some(secret) = named(docs, "Secret", s(r, "name")) {
                let key = s(r, "key");
                if ["data", "stringData"]
                    .iter()
                    .all(|d| get(secret, d).and_then(|m| m.get(key)).is_none())
                {
                    errors.push(format!("Secret {}: no key {key}", s(r, "name")));
                }
            }
        }
    }
    env
}

fn probe_port(c: &Value, probe: &str) -> Result<u16, String> {
    let path = get(c, &format!("{probe}.httpGet.path")).and_then(Value::as_str);
    if path != Some("/healthz") {
        return Err(format!("{probe} is not an httpGet on /healthz"));
    }
    match get(c, &format!("{probe}.httpGet.port")) {
        Some(Value::Number(n)) => Ok(n.as_u64().unwrap_or(0) as u16),
        Some(Value::String(name)) => seq(c, "ports")
            .iter()
            .find(|p| get(p, "name").and_then(Value::as_str) == Some(name))
            .and_then(|p| get(p, "containerPort").and_then(Value::as_u64))
            .map(|p| p as u16)
            .ok_or(format!("{probe}: no container port named {name}")),
        _ => Err(format!("{probe}: no port")),
    }
}

fn check_helm(code: &Code, docs: &[Value]) -> Vec<String> {
    let mut errors = Vec::new();
    for d in docs {
        if get(d, "apiVersion").is_none()
            || get(d, "metadata.name").and_then(Value::as_str).is_none()
        {
            errors.push(format!(
                "manifest without apiVersion or metadata.name: {d:?}"
            ));
        }
    }
    let mut envs = BTreeMap::new();
    for (bin, _) in STAGES {
        let deploys: Vec<_> = kind(docs, "Deployment")
            .into_iter()
            .filter(|d| {
                seq(d, "spec.template.spec.containers")
                    .iter()
                    .any(|c| seq(c, "command").first().and_then(Value::as_str) == Some(bin))
            })
            .collect();
        let [deploy] = deploys[..] else {
            errors.push(format!("helm: {} Deployments run {bin}", deploys.len()));
            continue;
        };
        let name = s(deploy, "metadata.name");
        let c = &seq(deploy, "spec.template.spec.containers")[0];
        let mut errs = Vec::new();
        let env = container_env(docs, c, &mut errs);
        errs.extend(code.unknown(&format!("Deployment {name}"), bin, &env));
        let pod_labels = get(deploy, "spec.template.metadata.labels");
        if !selects(get(deploy, "spec.selector.matchLabels"), pod_labels) {
            errs.push("selector does not match the pod labels".into());
        }
        match env.get("AGENTOPS_LISTEN").map(|l| listen_port(name, l)) {
            Some(Ok(port)) => {
                for probe in ["readinessProbe", "livenessProbe"] {
                    match probe_port(c, probe) {
                        Ok(p) if p == port => {}
                        Ok(p) => errs.push(format!("{probe} on port {p}, listen on {port}")),
                        Err(e) => errs.push(e),
                    }
                }
                if get(c, "startupProbe").is_some() && probe_port(c, "startupProbe") != Ok(port) {
                    errs.push("startupProbe is not /healthz on the listen port".into());
                }
                for svc in kind(docs, "Service") {
                    if selects(get(svc, "spec.selector"), pod_labels) {
                        for p in seq(svc, "spec.ports") {
                            let target = get(p, "targetPort").cloned().unwrap_or(Value::Null);
                            let tp = match &target {
                                Value::String(n) => seq(c, "ports")
                                    .iter()
                                    .find(|x| get(x, "name").and_then(Value::as_str) == Some(n))
                                    .and_then(|x| get(x, "containerPort").and_then(Value::as_u64)),
                                v => v.as_u64(),
                            };
                            if tp != Some(u64::from(port)) {
                                errs.push(format!(
                                    "Service {}: targetPort {target:?} is not {port}",
                                    s(svc, "metadata.name")
                                ));
                            }
                        }
                    }
                }
            }
            Some(Err(e)) => errs.push(e),
            None => errs.push("no AGENTOPS_LISTEN (default is loopback)".into()),
        }
        let has_service = kind(docs, "Service")
            .iter()
            .any(|svc| selects(get(svc, "spec.selector"), pod_labels));
        if matches!(bin, "agentops-ingest-gateway" | "agentops-query-api") && !has_service {
            errs.push("no Service".into());
        }
        let pdbs = kind(docs, "PodDisruptionBudget")
            .into_iter()
            .filter(|p| selects(get(p, "spec.selector.matchLabels"), pod_labels))
            .count();
        if pdbs != 1 {
            errs.push(format!("{pdbs} PodDisruptionBudgets select its pods"));
        }
        for r in ["requests.cpu", "requests.memory", "limits.memory"] {
            if get(c, &format!("resources.{r}")).is_none() {
                errs.push(format!("no resources.{r}"));
            }
        }
        if get(deploy, "spec.template.spec.securityContext.runAsNonRoot")
            != Some(&Value::Bool(true))
        {
            errs.push("runAsNonRoot is not set".into());
        }
        let scaled: Vec<_> = kind(docs, "ScaledObject")
            .into_iter()
            .filter(|o| get(o, "spec.scaleTargetRef.name").and_then(Value::as_str) == Some(name))
            .collect();
        if matches!(bin, "agentops-processors" | "agentops-projections") {
            let topic = if bin == "agentops-processors" {
                "kafka__topic_raw"
            } else {
                "kafka__topic_enriched"
            };
            errs.extend(check_scaled(code, bin, &env, topic, &scaled, deploy));
        } else if !scaled.is_empty() {
            errs.push("a ScaledObject scales a stage that does not consume Kafka".into());
        }
        errors.extend(
            errs.into_iter()
                .map(|e| format!("helm Deployment {name}: {e}")),
        );
        envs.insert(bin, env);
    }
    if envs.len() == STAGES.len() {
        errors.extend(check_groups(code, "helm", &envs));
    }
    let jobs: Vec<_> = kind(docs, "Job")
        .into_iter()
        .filter(|j| {
            let c = seq(j, "spec.template.spec.containers");
            let cmd: Vec<_> = c
                .first()
                .map(|c| seq(c, "command"))
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            cmd == ["agentops-query-api", "migrate"]
        })
        .collect();
    match jobs[..] {
        [job] => {
            let hook = get(job, "metadata.annotations")
                .and_then(|a| a.get("helm.sh/hook"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !(hook.contains("pre-install") && hook.contains("pre-upgrade")) {
                errors.push(format!(
                    "migrate Job: hook {hook:?} is not pre-install,pre-upgrade"
                ));
            }
            let mut errs = Vec::new();
            let env = container_env(
                docs,
                &seq(job, "spec.template.spec.containers")[0],
                &mut errs,
            );
            errors.extend(errs);
            errors.extend(code.unknown("migrate Job", "agentops-query-api", &env));
        }
        _ => errors.push(format!("helm: {} migrate Jobs", jobs.len())),
    }
    errors
}

fn check_scaled(
    code: &Code,
    bin: &str,
    env: &BTreeMap<String, String>,
    topic_key: &str,
    scaled: &[&Value],
    deploy: &Value,
) -> Vec<String> {
    let [o] = scaled[..] else {
        if scaled.is_empty() && get(deploy, "spec.replicas").is_none() {
            return vec!["neither a ScaledObject nor replicas".into()];
        }
        return if scaled.is_empty() {
            Vec::new()
        } else {
            vec!["several ScaledObjects".into()]
        };
    };
    let mut errs = Vec::new();
    if get(deploy, "spec.replicas").is_some() {
        errs.push("sets replicas although KEDA scales it".into());
    }
    let triggers = seq(o, "spec.triggers");
    let Some(t) = triggers
        .iter()
        .find(|t| get(t, "type").and_then(Value::as_str) == Some("kafka"))
    else {
        return vec!["ScaledObject has no kafka trigger".into()];
    };
    let meta = get(t, "metadata")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &meta {
        if !v.is_string() {
            errs.push(format!(
                "trigger metadata {k:?}: {v:?} is not a string (KEDA wants strings)"
            ));
        }
    }
    let m = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    for (field, key) in [
        ("consumerGroup", "group"),
        ("topic", topic_key),
        ("bootstrapServers", "kafka__brokers"),
    ] {
        let want = code.effective(bin, env, key);
        if m(field) != want {
            errs.push(format!(
                "trigger {field} {:?}, the stage uses {want:?}",
                m(field)
            ));
        }
    }
    if !m("lagThreshold").parse::<u64>().is_ok_and(|n| n > 0) {
        errs.push(format!(
            "lagThreshold {:?} is not a positive number",
            m("lagThreshold")
        ));
    }
    errs
}

// ---------------------------------------------------------------------------
// The tests.

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
    // The query API reads no Kafka settings.
    let docs = render_chart("queryApi: {env: {AGENTOPS_KAFKA__BROKERS: 'k:9092'}}\n");
    assert!(check_helm(&code, &docs)
        .join("\n")
        .contains("AGENTOPS_KAFKA__BROKERS"));
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
