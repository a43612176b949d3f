//! The authorization matrix (issue 12, item 3): every route of the gateway
//! and the query API, from the tables the routers are built from
//! (`agentops_ingest_gateway::routes`, `agentops_query_api::route_table`),
//! called with no key, a revoked key, each scope, another org's keys and a
//! platform admin's key; each answer must be what the route's row says. An
//! allowed caller gets neither 401, 403, 405 nor a 5xx; another org's key on
//! this org's ids gets 404; a method a path has no row for gets 405. A route
//! added without a row cannot exist (the routers are built from the rows).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use agentops_e2e::{Stack, StackOptions};
use agentops_query_api::route_table as table;
use agentops_query_api::routes::Access;
use anyhow::{ensure, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoKey,
    Revoked,
    Ingest,
    Read,
    Admin,
    OtherRead,
    OtherAdmin,
    PlatformAdmin,
}

const EVERYONE: [Who; 8] = [
    Who::NoKey,
    Who::Revoked,
    Who::Ingest,
    Who::Read,
    Who::Admin,
    Who::OtherRead,
    Who::OtherAdmin,
    Who::PlatformAdmin,
];

/// What the row says `who` gets: Some(exact status) or None (allowed: any
/// answer but 401, 403, 405 and 5xx).
fn expected(access: Option<Access>, who: Who) -> Option<u16> {
    use Who::*;
    match (who, access) {
        (_, Some(Access::Public)) => None,
        (NoKey | Revoked, _) => Some(401),
        // The gateway's routes (access None): ingest scope, or admin.
        (Read | OtherRead, None) => Some(403),
        (_, None) => None,
        (Ingest, _) => Some(403),
        (Read | OtherRead, Some(Access::Read)) => None,
        (Read | OtherRead, _) => Some(403),
        (Admin | OtherAdmin, Some(Access::PlatformAdmin)) => Some(403),
        _ => None,
    }
}

struct Keys {
    revoked: String,
    other_read: String,
    other_admin: String,
    platform: String,
}

async fn call(
    stack: &Stack,
    base: &str,
    method: &Method,
    path: &str,
    key: Option<&str>,
) -> Result<(u16, String)> {
    let mut req = stack.http.request(method.clone(), format!("{base}{path}"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        req = req.header("content-type", "application/json").body("{}");
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

/// `path` with its parameters filled in from `ids` (or harmless values).
fn fill(path: &str, ids: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        out.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        out.push_str(ids.get(name).map_or("matrix-none", String::as_str));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_caller_as_its_row_says() -> Result<()> {
    let started = Instant::now();
    let stack = Stack::start("authz", StackOptions::default()).await?;
    let pool = &stack.pool;
    let other_org = format!("{}-other", stack.org_id);
    let other =
        agentops_query_api::admin::create_org_with_keys(pool, &other_org, "Other", "e2e").await?;
    let platform = agentops_query_api::admin::provision_org(
        pool,
        &format!("{}-platform", stack.org_id),
        "Platform",
        true,
        "e2e",
    )
    .await?;
    let revoked = agentops_tenancy::create_key_named(
        pool,
        &stack.org_id,
        &[agentops_runtime::keys::Scope::Admin],
        Some("revoked"),
        "e2e",
    )
    .await?;
    ensure!(
        agentops_tenancy::revoke_key(pool, &stack.org_id, revoked.key_id, "e2e").await?,
        "revoke"
    );
    let keys = Keys {
        revoked: revoked.secret.clone(),
        other_read: other[1].secret.clone(),
        other_admin: other[2].secret.clone(),
        platform: platform[2].secret.clone(),
    };
    let key_of = |who: Who| -> Option<&str> {
        match who {
            Who::NoKey => None,
            Who::Revoked => Some(&keys.revoked),
            Who::Ingest => Some(&stack.ingest_key),
            Who::Read => Some(&stack.read_key),
            Who::Admin => Some(&stack.admin_key),
            Who::OtherRead => Some(&keys.other_read),
            Who::OtherAdmin => Some(&keys.other_admin),
            Who::PlatformAdmin => Some(&keys.platform),
        }
    };

    // This org's objects, for the other org's callers.
    let q = stack.query_url.clone();
    let mut own: BTreeMap<&str, String> = BTreeMap::new();
    for (path, body) in [
        (
            "/v1/admin/channels",
            json!({"name": "m", "kind": "webhook", "url": "https://hooks.test/m"}),
        ),
        (
            "/v1/admin/budgets",
            json!({"name": "m", "period": "day", "limit_usd": 5}),
        ),
        (
            "/v1/admin/alert-rules",
            json!({"name": "m", "kind": "no_heartbeat", "minutes": 10}),
        ),
        (
            "/v1/admin/policies",
            json!({"name": "m", "kind": "model_denylist", "names": ["o3"], "action": "flag"}),
        ),
    ] {
        let r = stack
            .http
            .post(format!("{q}{path}"))
            .bearer_auth(&stack.admin_key)
            .json(&body)
            .send()
            .await?;
        ensure!(r.status() == 201, "{path}: {}", r.status());
        let v: Value = r.json().await?;
        own.insert(path, v["id"].as_str().context("id")?.to_owned());
    }
    sqlx::query("INSERT INTO runs (org_id, run_id, agent_id, status) VALUES ($1, 'own-run', 'a', 'running')")
        .bind(&stack.org_id)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO agents (org_id, agent_id, first_seen, last_seen, day)
         VALUES ($1, 'a', now(), now(), current_date)",
    )
    .bind(&stack.org_id)
    .execute(pool)
    .await?;
    let read_key_id = agentops_tenancy::list_keys(pool, &stack.org_id)
        .await?
        .into_iter()
        .find(|k| k.scopes == ["read"])
        .context("the read key")?
        .id
        .to_string();

    // Harmless parameters for allowed callers.
    let fake: BTreeMap<&str, String> = [
        ("id", uuid::Uuid::new_v4().to_string()),
        ("key_id", uuid::Uuid::new_v4().to_string()),
        ("run_id", "matrix-no-run".to_owned()),
        ("alert_id", "matrix-no-alert".to_owned()),
        ("agent_id", "matrix-agent".to_owned()),
        ("org_id", other_org.clone()),
    ]
    .into();

    let mut rows: Vec<(String, Method, String, Option<Access>)> = table()
        .into_iter()
        .map(|r| (q.clone(), r.method, r.path, Some(r.access)))
        .collect();
    for (method, path) in agentops_ingest_gateway::routes() {
        rows.push((stack.gateway_url.clone(), method, path.to_owned(), None));
    }
    let mut calls = 0;
    let mut failures = Vec::new();
    for (base, method, path, access) in &rows {
        for who in EVERYONE {
            let url = fill(path, &fake);
            let (status, body) = call(&stack, base, method, &url, key_of(who)).await?;
            calls += 1;
            let ok = match expected(*access, who) {
                Some(want) => status == want,
                None => !matches!(status, 401 | 403 | 405) && status < 500,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {who:?}: {status} (row: {access:?}) {}",
                    body.chars().take(160).collect::<String>()
                ));
            }
        }
        // Another org's keys on this org's ids: 404, never this org's data.
        let target = if path.contains("{run_id}") {
            Some(("run_id", "own-run".to_owned()))
        } else if path == "/v1/agents/{agent_id}" {
            Some(("agent_id", "a".to_owned()))
        } else if path.starts_with("/v1/admin/keys/") {
            Some(("key_id", read_key_id.clone()))
        } else {
            own.iter()
                .find(|(p, _)| path.starts_with(&format!("{p}/")))
                .map(|(_, id)| ("id", id.clone()))
        };
        if let (Some((param, id)), Some(access @ (Access::Read | Access::Admin))) = (target, access)
        {
            let mut ids = fake.clone();
            ids.insert(param, id);
            let url = fill(path, &ids);
            let who = if *access == Access::Read {
                Who::OtherRead
            } else {
                Who::OtherAdmin
            };
            let (status, body) = call(&stack, base, method, &url, key_of(who)).await?;
            calls += 1;
            if status != 404 {
                failures.push(format!(
                    "{method} {url} as {who:?} on this org's id: {status} {body}"
                ));
            }
        }
    }
    // Methods without a row: 405.
    let mut by_path: BTreeMap<(&str, &str), BTreeSet<Method>> = BTreeMap::new();
    for (base, method, path, _) in &rows {
        by_path
            .entry((base, path))
            .or_default()
            .insert(method.clone());
    }
    for ((base, path), methods) in &by_path {
        for m in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if methods.contains(&m) {
                continue;
            }
            let (status, _) =
                call(&stack, base, &m, &fill(path, &fake), Some(&stack.admin_key)).await?;
            calls += 1;
            if status != 405 {
                failures.push(format!("{m} {path} (no row): {status}, want 405"));
            }
        }
    }
    // Nothing of this org was changed by the other org's callers.
    for (path, id) in &own {
        let r = stack
            .http
            .get(format!("{q}{path}/{id}"))
            .bearer_auth(&stack.admin_key)
            .send()
            .await?;
        ensure!(
            r.status() == 200,
            "{path}/{id} gone after the walk: {}",
            r.status()
        );
    }
    let read_key_alive = stack
        .http
        .get(format!("{q}/v1/metrics/overview"))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(
        read_key_alive.status() == 200,
        "the read key was revoked by another org"
    );

    eprintln!(
        "authorization matrix: {} routes x {} callers, {calls} requests in {:.1} s",
        rows.len(),
        EVERYONE.len(),
        started.elapsed().as_secs_f64()
    );
    ensure!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
