//! The chart's manifests, checked against the code.

use super::*;

/// The documents of a multi-document YAML stream (`---` lines between).
pub(crate) fn manifests(what: &str, text: &str) -> Vec<Value> {
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

pub(crate) fn kind<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| get(d, "kind").and_then(Value::as_str) == Some(k))
        .collect()
}

pub(crate) fn named<'a>(docs: &'a [Value], k: &str, name: &str) -> Option<&'a Value> {
    kind(docs, k)
        .into_iter()
        .find(|d| get(d, "metadata.name").and_then(Value::as_str) == Some(name))
}

pub(crate) fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(Value::Mapping(sel)), Some(Value::Mapping(labels))) = (selector, labels) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A container's environment: `env` entries and its ConfigMaps' data.
pub(crate) fn container_env(
    docs: &[Value],
    c: &Value,
    errors: &mut Vec<String>,
) -> BTreeMap<String, String> {
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

pub(crate) fn probe_port(c: &Value, probe: &str) -> Result<u16, String> {
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

pub(crate) fn check_helm(code: &Code, docs: &[Value]) -> Vec<String> {
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
        errors.extend(check_live_feed(code, "helm", &envs));
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

pub(crate) fn check_scaled(
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
