//! Docker Compose and Prometheus.

use super::*;

pub(crate) fn compose_env(svc: &Value) -> BTreeMap<String, String> {
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
pub(crate) fn command_words(svc: &Value) -> Vec<String> {
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
pub(crate) fn binary_of(words: &[String]) -> Option<&'static str> {
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

pub(crate) fn check_compose(code: &Code, compose: &Value, prometheus: &Value) -> Vec<String> {
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
        errors.extend(check_live_feed(code, "compose", &effective));
    }
    errors
}

/// The query API's live feed (`GET /v1/live`) tails the enriched and alerts
/// topics the processors write, on the same brokers.
pub(crate) fn check_live_feed(
    code: &Code,
    what: &str,
    env: &BTreeMap<&str, BTreeMap<String, String>>,
) -> Vec<String> {
    let (p, q) = ("agentops-processors", "agentops-query-api");
    ["kafka__brokers", "kafka__topic_enriched", "kafka__topic_alerts"]
        .into_iter()
        .filter_map(|key| {
            let want = code.effective(p, &env[p], key);
            let got = code.effective(q, &env[q], key);
            (got != want).then(|| {
                format!("{what}: the query API's live feed reads {key} {got:?}, the processors use {want:?}")
            })
        })
        .collect()
}

/// The processors' `projection_group` names the projections' consumer group.
pub(crate) fn check_groups(
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
