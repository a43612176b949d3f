//! Orgs and API keys through the real gateway and query API (every
//! component its own process, one database): revocation reaches both
//! services within 5 s, scopes are enforced, orgs never see each other's
//! runs, keys, alerts or budgets, key lists hold no secret, changes are
//! audited, and a platform admin creates an org that then ingests under the
//! limits it is given.

use std::time::{Duration, Instant};

use agentops_e2e::{events, Stack, StackOptions};
use agentops_query_api::admin;
use agentops_runtime::keys::hash_key;
use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Within this of a revoke's 200, both services must refuse the key.
const REVOCATION_BOUND: Duration = Duration::from_secs(5);

/// One query-API request: status and JSON body (`null` when empty).
async fn api(
    stack: &Stack,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = stack
        .http
        .request(method.parse()?, format!("{}{path}", stack.query_url))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, v))
}

/// A query-API request that must answer `want`; its body.
async fn expect(
    stack: &Stack,
    want: u16,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Result<Value> {
    let (status, v) = api(stack, method, path, key, body).await?;
    ensure!(
        status == want,
        "{method} {path}: {status} (wanted {want}) {v}"
    );
    Ok(v)
}

/// A 400 naming `field`.
async fn expect_400(
    stack: &Stack,
    method: &str,
    path: &str,
    key: &str,
    body: Value,
    field: &str,
) -> Result<()> {
    let v = expect(stack, 400, method, path, key, Some(body.clone())).await?;
    ensure!(
        v["error"]["field"] == json!(field),
        "{method} {path} {body}: expected field {field}, got {v}"
    );
    Ok(())
}

/// One heartbeat event through the gateway with `key`: status and body.
async fn ingest_one(stack: &Stack, key: &str) -> Result<(u16, Value)> {
    let e = json!({"event_id": events::id(), "type": "heartbeat", "agent_id": "tenancy-hb",
                   "timestamp": Utc::now().to_rfc3339()});
    stack
        .post_raw("/v1/events", serde_json::to_vec(&e)?, Some(key))
        .await
}

/// The id and prefix of a raw key, from the database.
async fn key_row(stack: &Stack, raw: &str) -> Result<(uuid::Uuid, String)> {
    Ok(
        sqlx::query_as("SELECT id, prefix FROM api_keys WHERE key_hash = $1")
            .bind(hash_key(raw))
            .fetch_one(&stack.pool)
            .await?,
    )
}

/// `admin:<key id>:<prefix>` of a raw key.
async fn actor_of(stack: &Stack, raw: &str) -> Result<String> {
    let (id, prefix) = key_row(stack, raw).await?;
    Ok(format!("admin:{id}:{prefix}"))
}

fn str_of<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("no string `{field}` in {v}"))
}

/// A fresh org id unique to this run.
fn org_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_everywhere_within_5s_listed_without_secrets_and_audited(
) -> Result<()> {
    let stack = Stack::start("tenancy_revoke", StackOptions::default()).await?;
    let admin_key = stack.admin_key.clone();

    // An org admin creates a key that may both ingest and read.
    let created = expect(
        &stack,
        201,
        "POST",
        "/v1/admin/keys",
        &admin_key,
        Some(json!({"scopes": ["ingest", "read"], "name": "ci pipeline"})),
    )
    .await?;
    let raw = str_of(&created, "key")?.to_owned();
    let key_id = str_of(&created, "id")?.to_owned();
    ensure!(raw.starts_with("aok_"), "{created}");
    ensure!(created["scopes"] == json!(["ingest", "read"]), "{created}");
    ensure!(created["name"] == json!("ci pipeline"), "{created}");
    ensure!(created["org_id"] == json!(stack.org_id), "{created}");
    let actor = actor_of(&stack, &admin_key).await?;
    ensure!(created["created_by"] == json!(actor), "{created}");

    // Accepted by both services right before the revoke.
    let (status, body) = ingest_one(&stack, &raw).await?;
    ensure!(status == 202, "ingest before revoke: {status} {body}");
    expect(&stack, 200, "GET", "/v1/metrics/overview", &raw, None).await?;
    let (status, body) = ingest_one(&stack, &raw).await?;
    ensure!(status == 202, "ingest right before revoke: {status} {body}");

    let revoked = expect(
        &stack,
        200,
        "POST",
        &format!("/v1/admin/keys/{key_id}/revoke"),
        &admin_key,
        None,
    )
    .await?;
    let revoked_at = Instant::now();
    ensure!(revoked["revoked_at"].is_string(), "{revoked}");
    ensure!(revoked.get("key").is_none(), "{revoked}");

    // Poll both services until each refuses; fail if either still accepts
    // 5 s after the revoke's 200.
    let (mut gateway_refused, mut query_refused) = (None, None);
    while gateway_refused.is_none() || query_refused.is_none() {
        if gateway_refused.is_none() {
            let (status, body) = ingest_one(&stack, &raw).await?;
            match status {
                401 => {
                    ensure!(body["error"]["code"] == "invalid_api_key", "{body}");
                    gateway_refused = Some(revoked_at.elapsed());
                }
                202 => {}
                other => bail!("gateway answered {other} {body} to a revoked key"),
            }
        }
        if query_refused.is_none() {
            let (status, body) = api(&stack, "GET", "/v1/metrics/overview", &raw, None).await?;
            match status {
                401 => {
                    ensure!(body["error"]["code"] == "invalid_api_key", "{body}");
                    query_refused = Some(revoked_at.elapsed());
                }
                200 => {}
                other => bail!("query API answered {other} {body} to a revoked key"),
            }
        }
        if revoked_at.elapsed() > REVOCATION_BOUND {
            bail!(
                "revoked key still accepted {REVOCATION_BOUND:?} after the revoke \
                 (gateway refused after {gateway_refused:?}, query API after {query_refused:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "revoked key refused: gateway after {gateway_refused:?}, query API after {query_refused:?}"
    );
    // And it stays refused.
    ensure!(ingest_one(&stack, &raw).await?.0 == 401);
    expect(&stack, 401, "GET", "/v1/agents", &raw, None).await?;

    // Revoking again is a conflict, by either route.
    let again = expect(
        &stack,
        409,
        "POST",
        &format!("/v1/admin/keys/{key_id}/revoke"),
        &admin_key,
        None,
    )
    .await?;
    ensure!(again["error"]["code"] == "conflict", "{again}");
    expect(
        &stack,
        409,
        "DELETE",
        &format!("/v1/admin/keys/{key_id}"),
        &admin_key,
        None,
    )
    .await?;
    // DELETE revokes too.
    let second = expect(
        &stack,
        201,
        "POST",
        "/v1/admin/keys",
        &admin_key,
        Some(json!({"scopes": ["read"]})),
    )
    .await?;
    let second_id = str_of(&second, "id")?.to_owned();
    let second_raw = str_of(&second, "key")?.to_owned();
    expect(
        &stack,
        200,
        "DELETE",
        &format!("/v1/admin/keys/{second_id}"),
        &admin_key,
        None,
    )
    .await?;
    // An id that is not a key at all is 404.
    for path in [
        format!("/v1/admin/keys/{}/revoke", uuid::Uuid::new_v4()),
        "/v1/admin/keys/not-a-uuid/revoke".to_owned(),
    ] {
        expect(&stack, 404, "POST", &path, &admin_key, None).await?;
    }

    // The key list: every key of the org, the revoked ones with their time,
    // never a secret or a hash.
    let list = expect(&stack, 200, "GET", "/v1/admin/keys", &admin_key, None).await?;
    let keys = list["keys"].as_array().context("keys")?;
    ensure!(keys.len() == 5, "3 stack keys + 2 created: {list}");
    let mine = keys
        .iter()
        .find(|k| k["id"] == json!(key_id))
        .context("the revoked key is listed")?;
    ensure!(mine["revoked_at"].is_string(), "{mine}");
    ensure!(mine["name"] == json!("ci pipeline"), "{mine}");
    ensure!(mine["created_by"] == json!(actor), "{mine}");
    ensure!(mine["prefix"]
        .as_str()
        .is_some_and(|p| raw.starts_with(&format!("aok_{p}_"))));
    for k in keys {
        for field in ["key", "secret", "key_hash", "hash"] {
            ensure!(k.get(field).is_none(), "`{field}` in the key list: {k}");
        }
    }
    let text = list.to_string();
    let hashes: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys")
        .fetch_all(&stack.pool)
        .await?;
    for secret in [
        &raw,
        &second_raw,
        &stack.ingest_key,
        &stack.read_key,
        &stack.admin_key,
    ] {
        let tail = secret.rsplit('_').next().unwrap_or_default();
        ensure!(!text.contains(tail), "a secret is in the key list");
    }
    for (h,) in &hashes {
        ensure!(!text.contains(h.as_str()), "a key hash is in the key list");
    }

    // The audit log: the create and the revoke, with actor and time, newest first.
    let audit = expect(
        &stack,
        200,
        "GET",
        "/v1/admin/audit?limit=100",
        &admin_key,
        None,
    )
    .await?;
    let entries = audit["entries"].as_array().context("entries")?;
    let find = |action: &str, id: &str| {
        entries
            .iter()
            .find(|e| e["action"] == json!(action) && e["detail"]["key_id"] == json!(id))
            .cloned()
    };
    let create = find("api_key.create", &key_id).context("api_key.create audited")?;
    let revoke = find("api_key.revoke", &key_id).context("api_key.revoke audited")?;
    for e in [&create, &revoke] {
        ensure!(e["actor"] == json!(actor), "{e}");
        let at: DateTime<Utc> = str_of(e, "at")?.parse()?;
        ensure!((Utc::now() - at).num_seconds().abs() < 120, "{e}");
    }
    ensure!(
        create["detail"]["scopes"] == json!(["ingest", "read"]),
        "{create}"
    );
    let pos = |e: &Value| entries.iter().position(|x| x == e);
    ensure!(pos(&revoke) < pos(&create), "newest first: {audit}");
    let ats: Vec<DateTime<Utc>> = entries
        .iter()
        .map(|e| str_of(e, "at").and_then(|a| Ok(a.parse()?)))
        .collect::<Result<_>>()?;
    ensure!(
        ats.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {audit}"
    );
    ensure!(
        !audit
            .to_string()
            .contains(raw.rsplit('_').next().unwrap_or("x")),
        "a secret is in the audit log"
    );
    // Only one revoke row: the 409s wrote nothing.
    let revokes = entries
        .iter()
        .filter(|e| e["action"] == "api_key.revoke" && e["detail"]["key_id"] == json!(key_id))
        .count();
    ensure!(revokes == 1, "{audit}");
    let limited = expect(
        &stack,
        200,
        "GET",
        "/v1/admin/audit?limit=1",
        &admin_key,
        None,
    )
    .await?;
    ensure!(limited["entries"].as_array().map(Vec::len) == Some(1));
    expect(
        &stack,
        400,
        "GET",
        "/v1/admin/audit?limit=0",
        &admin_key,
        None,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced_and_orgs_never_see_each_other() -> Result<()> {
    let stack = Stack::start("tenancy_isolation", StackOptions::default()).await?;
    let a_admin = stack.admin_key.clone();
    let a_read = stack.read_key.clone();

    // A read key cannot ingest; an ingest key cannot read or manage.
    let (status, body) = ingest_one(&stack, &a_read).await?;
    ensure!(status == 403, "read key ingesting: {status} {body}");
    ensure!(body["error"]["code"] == "forbidden", "{body}");
    ensure!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`ingest`")),
        "{body}"
    );
    let (status, body) = ingest_one(&stack, &stack.ingest_key).await?;
    ensure!(status == 202, "{status} {body}");
    for path in ["/v1/metrics/overview", "/v1/runs/x", "/v1/agents"] {
        let v = expect(&stack, 403, "GET", path, &stack.ingest_key, None).await?;
        ensure!(v["error"]["code"] == "forbidden", "{v}");
        ensure!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("`read`")),
            "{v}"
        );
    }
    for key in [&stack.ingest_key, &a_read] {
        expect(&stack, 403, "GET", "/v1/admin/keys", key, None).await?;
        expect(
            &stack,
            403,
            "POST",
            "/v1/admin/keys",
            key,
            Some(json!({"scopes": ["admin"]})),
        )
        .await?;
        expect(&stack, 403, "GET", "/v1/admin/audit", key, None).await?;
    }
    expect(
        &stack,
        401,
        "GET",
        "/v1/admin/keys",
        "aok_00000000_nope",
        None,
    )
    .await?;

    // Field-named 400s.
    let k = "/v1/admin/keys";
    expect_400(&stack, "POST", k, &a_admin, json!({}), "scopes").await?;
    expect_400(
        &stack,
        "POST",
        k,
        &a_admin,
        json!({"scopes": ["write"]}),
        "scopes",
    )
    .await?;
    expect_400(&stack, "POST", k, &a_admin, json!({"scopes": []}), "scopes").await?;
    expect_400(
        &stack,
        "POST",
        k,
        &a_admin,
        json!({"scopes": ["read"], "name": ""}),
        "name",
    )
    .await?;
    expect_400(
        &stack,
        "POST",
        k,
        &a_admin,
        json!({"scopes": ["read"], "org_id": "other"}),
        "org_id",
    )
    .await?;

    // Org B in the same database, with its own run through the pipeline.
    let b_id = org_id("org-b");
    let b = admin::create_org_with_keys(&stack.pool, &b_id, "Org B", "e2e").await?;
    let (b_ingest, b_read, b_admin) = (&b[0].secret, &b[1].secret, &b[2].secret);
    let run_id = format!("run-{b_id}");
    let run = events::run("agent-b", &run_id, false, 900, 0);
    let (status, body) = stack
        .post_raw(
            "/v1/events",
            serde_json::to_vec(&json!({ "events": run }))?,
            Some(b_ingest),
        )
        .await?;
    ensure!(status == 202 && body["accepted"] == 5, "{status} {body}");
    let path = format!("/v1/runs/{run_id}");
    let seen = stack
        .eventually(Duration::from_secs(60), "org B's run projected", || async {
            let (status, v) = api(&stack, "GET", &path, b_read, None).await?;
            Ok((status == 200 && v["status"] == "completed").then_some(v))
        })
        .await?;
    ensure!(seen["events"].as_array().map(Vec::len) == Some(5), "{seen}");
    // Org A's read and admin keys: 404, like a run that does not exist.
    for key in [&a_read, &a_admin] {
        let v = expect(&stack, 404, "GET", &path, key, None).await?;
        ensure!(v["error"]["code"] == "not_found", "{v}");
    }
    expect(&stack, 200, "GET", &path, b_read, None).await?;

    // Org A's admin cannot see or revoke org B's keys.
    let (b_key_id, _) = key_row(&stack, b_ingest).await?;
    for (method, p) in [
        ("POST", format!("/v1/admin/keys/{b_key_id}/revoke")),
        ("DELETE", format!("/v1/admin/keys/{b_key_id}")),
    ] {
        let v = expect(&stack, 404, method, &p, &a_admin, None).await?;
        ensure!(v["error"]["code"] == "not_found", "{v}");
    }
    let a_keys = expect(&stack, 200, "GET", "/v1/admin/keys", &a_admin, None).await?;
    ensure!(
        a_keys["keys"].as_array().is_some_and(
            |ks| ks.len() == 3 && ks.iter().all(|k| k["org_id"] == json!(stack.org_id))
        ),
        "{a_keys}"
    );
    ensure!(!a_keys.to_string().contains(&b_key_id.to_string()));
    // B's key still works, and nothing was written to B's audit log by A.
    let (status, _) = ingest_one(&stack, b_ingest).await?;
    ensure!(status == 202);
    let (revoked_b,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM api_keys WHERE org_id = $1 AND revoked_at IS NOT NULL",
    )
    .bind(&b_id)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(revoked_b == 0);
    let a_audit = expect(&stack, 200, "GET", "/v1/admin/audit", &a_admin, None).await?;
    let b_audit = expect(&stack, 200, "GET", "/v1/admin/audit", b_admin, None).await?;
    ensure!(!a_audit.to_string().contains(&b_id), "{a_audit}");
    ensure!(
        b_audit["entries"].as_array().is_some_and(|e| e.len() == 4
            && e.iter()
                .all(|x| x["action"] == "api_key.create" || x["action"] == "org.create")),
        "{b_audit}"
    );

    // B's alert and budget are 404 to A.
    let alert_id = format!("alert-{b_id}");
    sqlx::query(
        "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message, source,
                             scope_key)
         VALUES ($1, $2, 'error_rate', '', 0.25, 0.5, 'error rate 50%', 'rule', 'org')",
    )
    .bind(&alert_id)
    .bind(&b_id)
    .execute(&stack.pool)
    .await?;
    let alert_path = format!("/v1/alerts/{alert_id}");
    expect(&stack, 200, "GET", &alert_path, b_read, None).await?;
    expect(&stack, 404, "GET", &alert_path, &a_read, None).await?;
    expect(
        &stack,
        404,
        "POST",
        &format!("{alert_path}/ack"),
        &a_admin,
        Some(json!({})),
    )
    .await?;
    let a_alerts = expect(&stack, 200, "GET", "/v1/alerts", &a_read, None).await?;
    ensure!(!a_alerts.to_string().contains(&alert_id), "{a_alerts}");
    let budget = expect(
        &stack,
        201,
        "POST",
        "/v1/admin/budgets",
        b_admin,
        Some(json!({"name": "b monthly", "period": "month", "limit_usd": 100})),
    )
    .await?;
    let budget_path = format!("/v1/admin/budgets/{}", str_of(&budget, "id")?);
    expect(&stack, 200, "GET", &budget_path, b_admin, None).await?;
    expect(&stack, 404, "GET", &budget_path, &a_admin, None).await?;
    expect(
        &stack,
        404,
        "PUT",
        &budget_path,
        &a_admin,
        Some(json!({"limit_usd": 1})),
    )
    .await?;
    expect(&stack, 404, "DELETE", &budget_path, &a_admin, None).await?;
    expect(&stack, 200, "GET", &budget_path, b_admin, None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_admin_creates_an_org_that_ingests_under_its_limits() -> Result<()> {
    let stack = Stack::start("tenancy_platform", StackOptions::default()).await?;
    let platform_id = org_id("platform");
    let platform = admin::provision_org(&stack.pool, &platform_id, "Platform", true, "e2e").await?;
    let p_admin = platform[2].secret.clone();
    let p_actor = actor_of(&stack, &p_admin).await?;

    // A non-platform admin gets 403 naming why, on every org route.
    let new_id = org_id("new");
    for (method, path, body) in [
        ("GET", "/v1/admin/orgs".to_owned(), None),
        (
            "POST",
            "/v1/admin/orgs".to_owned(),
            Some(json!({"id": new_id})),
        ),
        ("GET", format!("/v1/admin/orgs/{}", stack.org_id), None),
        (
            "PATCH",
            format!("/v1/admin/orgs/{}", stack.org_id),
            Some(json!({"ingest_events_per_sec": 1})),
        ),
        ("GET", format!("/v1/admin/orgs/{}/keys", stack.org_id), None),
        (
            "POST",
            format!("/v1/admin/orgs/{platform_id}/keys"),
            Some(json!({"scopes": ["admin"]})),
        ),
    ] {
        let v = expect(&stack, 403, method, &path, &stack.admin_key, body).await?;
        ensure!(v["error"]["code"] == "forbidden", "{v}");
        ensure!(v["error"]["required"] == "platform_admin", "{v}");
        ensure!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("platform")),
            "{v}"
        );
    }
    // Nor may the platform org's read key.
    expect(
        &stack,
        403,
        "GET",
        "/v1/admin/orgs",
        &platform[1].secret,
        None,
    )
    .await?;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM orgs WHERE id = $1")
        .bind(&new_id)
        .fetch_one(&stack.pool)
        .await?;
    ensure!(count == 0, "a refused create wrote an org");

    // Bad bodies name their field.
    let o = "/v1/admin/orgs";
    expect_400(
        &stack,
        "POST",
        o,
        &p_admin,
        json!({"id": "Not Valid"}),
        "id",
    )
    .await?;
    expect_400(&stack, "POST", o, &p_admin, json!({"name": "x"}), "id").await?;
    expect_400(
        &stack,
        "POST",
        o,
        &p_admin,
        json!({"id": new_id, "ingest_events_per_sec": 0}),
        "ingest_events_per_sec",
    )
    .await?;
    expect_400(
        &stack,
        "POST",
        o,
        &p_admin,
        json!({"id": new_id, "ingest_events_per_sec": 5, "ingest_burst": 0.5}),
        "ingest_burst",
    )
    .await?;
    expect_400(
        &stack,
        "POST",
        o,
        &p_admin,
        json!({"id": new_id, "platform": true}),
        "platform",
    )
    .await?;

    // Create the org: 201 with it and its first admin key, shown once.
    let created = expect(
        &stack,
        201,
        "POST",
        o,
        &p_admin,
        Some(json!({"id": new_id, "name": "New Co", "ingest_events_per_sec": 1000})),
    )
    .await?;
    let org = &created["org"];
    ensure!(
        org["id"] == json!(new_id) && org["name"] == "New Co",
        "{created}"
    );
    ensure!(
        org["platform"] == false && org["ingest_events_per_sec"] == 1000.0,
        "{created}"
    );
    ensure!(
        org["ingest_burst"].is_null() && org["live_keys"] == 1,
        "{created}"
    );
    let new_admin = str_of(&created["admin_key"], "key")?.to_owned();
    ensure!(
        created["admin_key"]["scopes"] == json!(["admin"]),
        "{created}"
    );
    ensure!(
        created["admin_key"]["created_by"] == json!(p_actor),
        "{created}"
    );
    let again = expect(
        &stack,
        409,
        "POST",
        o,
        &p_admin,
        Some(json!({"id": new_id})),
    )
    .await?;
    ensure!(again["error"]["code"] == "conflict", "{again}");
    // Its admin key is an org admin's, not a platform admin's.
    expect(&stack, 403, "GET", o, &new_admin, None).await?;

    // Its admin creates an ingest key; the platform admin a read key.
    let ingest = expect(
        &stack,
        201,
        "POST",
        "/v1/admin/keys",
        &new_admin,
        Some(json!({"scopes": ["ingest"], "name": "fleet"})),
    )
    .await?;
    let new_ingest = str_of(&ingest, "key")?.to_owned();
    let org_keys = format!("/v1/admin/orgs/{new_id}/keys");
    let read = expect(
        &stack,
        201,
        "POST",
        &org_keys,
        &p_admin,
        Some(json!({"scopes": ["read"]})),
    )
    .await?;
    ensure!(read["org_id"] == json!(new_id), "{read}");
    let new_read = str_of(&read, "key")?.to_owned();
    expect_400(
        &stack,
        "POST",
        &org_keys,
        &p_admin,
        json!({"scopes": ["root"]}),
        "scopes",
    )
    .await?;
    expect(
        &stack,
        404,
        "POST",
        "/v1/admin/orgs/no-such-org/keys",
        &p_admin,
        Some(json!({"scopes": ["read"]})),
    )
    .await?;
    expect(
        &stack,
        404,
        "GET",
        "/v1/admin/orgs/No Such/keys",
        &p_admin,
        None,
    )
    .await?;

    // It ingests a run that its read key then reads; the stack's org cannot.
    let run_id = format!("run-{new_id}");
    let run = events::run("agent-new", &run_id, false, 700, 0);
    let (status, body) = stack
        .post_raw(
            "/v1/events",
            serde_json::to_vec(&json!({ "events": run }))?,
            Some(&new_ingest),
        )
        .await?;
    ensure!(status == 202 && body["accepted"] == 5, "{status} {body}");
    let path = format!("/v1/runs/{run_id}");
    stack
        .eventually(
            Duration::from_secs(60),
            "the new org's run projected",
            || async {
                let (status, _) = api(&stack, "GET", &path, &new_read, None).await?;
                Ok((status == 200).then_some(()))
            },
        )
        .await?;
    expect(&stack, 404, "GET", &path, &stack.read_key, None).await?;

    // Its keys, listed by the platform admin without secrets.
    let listed = expect(&stack, 200, "GET", &org_keys, &p_admin, None).await?;
    let ks = listed["keys"].as_array().context("keys")?;
    ensure!(ks.len() == 3, "{listed}");
    ensure!(ks
        .iter()
        .all(|k| k.get("key").is_none() && k.get("key_hash").is_none()));
    for secret in [&new_admin, &new_ingest, &new_read] {
        ensure!(!listed
            .to_string()
            .contains(secret.rsplit('_').next().unwrap_or("x")));
    }

    // Limits: set, read back, enforced by the gateway, cleared.
    let org_path = format!("/v1/admin/orgs/{new_id}");
    let set = expect(
        &stack,
        200,
        "PATCH",
        &org_path,
        &p_admin,
        Some(json!({"ingest_events_per_sec": 0.5, "ingest_burst": 2})),
    )
    .await?;
    ensure!(
        set["ingest_events_per_sec"] == 0.5 && set["ingest_burst"] == 2.0,
        "{set}"
    );
    let got = expect(&stack, 200, "GET", &org_path, &p_admin, None).await?;
    ensure!(
        got["ingest_events_per_sec"] == 0.5 && got["ingest_burst"] == 2.0,
        "{got}"
    );
    let all = expect(&stack, 200, "GET", o, &p_admin, None).await?;
    let listed = all["orgs"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == json!(new_id)))
        .context("the new org is listed")?;
    ensure!(listed["ingest_burst"] == 2.0, "{all}");
    ensure!(
        all["orgs"].as_array().is_some_and(|a| a.len() == 3),
        "stack org, platform org, new org: {all}"
    );
    expect_400(
        &stack,
        "PATCH",
        &org_path,
        &p_admin,
        json!({"ingest_burst": 0}),
        "ingest_burst",
    )
    .await?;
    expect_400(
        &stack,
        "PATCH",
        &org_path,
        &p_admin,
        json!({"ingest_events_per_sec": -1}),
        "ingest_events_per_sec",
    )
    .await?;
    expect_400(
        &stack,
        "PATCH",
        &org_path,
        &p_admin,
        json!({"name": "x"}),
        "name",
    )
    .await?;
    expect(
        &stack,
        404,
        "PATCH",
        "/v1/admin/orgs/no-such-org",
        &p_admin,
        Some(json!({"ingest_events_per_sec": 1})),
    )
    .await?;
    // Once the gateway's key cache turns over, the new org is held to 0.5/s.
    let limited = stack
        .eventually(
            Duration::from_secs(5),
            "the org's limit applied",
            || async {
                let (status, body) = ingest_one(&stack, &new_ingest).await?;
                match status {
                    429 => Ok(Some(body)),
                    202 => Ok(None),
                    other => bail!("{other} {body}"),
                }
            },
        )
        .await?;
    ensure!(limited["error"]["code"] == "rate_limited", "{limited}");
    let cleared = expect(
        &stack,
        200,
        "PATCH",
        &org_path,
        &p_admin,
        Some(json!({"ingest_events_per_sec": null})),
    )
    .await?;
    ensure!(cleared["ingest_events_per_sec"].is_null() && cleared["ingest_burst"].is_null());
    stack
        .eventually(Duration::from_secs(5), "the limit cleared", || async {
            let (status, _) = ingest_one(&stack, &new_ingest).await?;
            Ok((status == 202).then_some(()))
        })
        .await?;

    // The platform admin revokes one of its keys; another org's key id is 404 there.
    let ingest_id = str_of(&ingest, "id")?;
    let revoke = format!("{org_keys}/{ingest_id}/revoke");
    expect(&stack, 200, "POST", &revoke, &p_admin, None).await?;
    expect(&stack, 409, "POST", &revoke, &p_admin, None).await?;
    let (stack_key, _) = key_row(&stack, &stack.ingest_key).await?;
    expect(
        &stack,
        404,
        "POST",
        &format!("{org_keys}/{stack_key}/revoke"),
        &p_admin,
        None,
    )
    .await?;

    // The new org's audit log tells the story, with the acting keys.
    let audit = expect(&stack, 200, "GET", "/v1/admin/audit", &new_admin, None).await?;
    let entries = audit["entries"].as_array().context("entries")?;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let new_actor = actor_of(&stack, &new_admin).await?;
    let want = vec![
        ("org.create", p_actor.as_str()),
        ("api_key.create", p_actor.as_str()),
        ("api_key.create", new_actor.as_str()),
        ("api_key.create", p_actor.as_str()),
        ("org.limits", p_actor.as_str()),
        ("org.limits", p_actor.as_str()),
        ("api_key.revoke", p_actor.as_str()),
    ];
    ensure!(actions == want, "{actions:?}");
    let limits = &entries[1];
    ensure!(
        limits["detail"]["previous"]["ingest_burst"] == 2.0,
        "{limits}"
    );
    Ok(())
}
