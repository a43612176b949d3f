//! The governance API through the in-process router on its own database
//! (plain PostgreSQL mode): two orgs, each with read and admin keys.
//!
//! Checks create / list / get / update / delete of channels, budgets, alert
//! rules and policies, the digest, field-named 400s, 404 for the other org's
//! ids, 409 for duplicate names and for acknowledging twice, the audit log,
//! agent controls as seen by `GET /v1/agents`, and budget spend so far.
//!
//! The harness is here; the tests are in the modules, one per area.

mod alerts;
mod configuration;
mod controls;
mod legacy_budget;

use std::time::Duration;

use agentops_e2e::events::enriched_event;
use agentops_e2e::prepared_database;
use agentops_governance::{period_start, Period};
use agentops_projections::Writer;
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

struct Org {
    id: String,
    read: String,
    admin: String,
}

struct Api {
    pool: PgPool,
    router: axum::Router,
    a: Org,
    b: Org,
}

impl Api {
    async fn start(prefix: &str) -> Result<Api> {
        let (_, pool) = prepared_database(prefix).await?;
        let mut orgs = Vec::new();
        for id in ["org-a", "org-b"] {
            let keys =
                agentops_query_api::admin::create_org_with_keys(&pool, id, id, "test").await?;
            orgs.push(Org {
                id: id.into(),
                read: keys[1].secret.clone(),
                admin: keys[2].secret.clone(),
            });
        }
        let b = orgs.pop().context("org b")?;
        let a = orgs.pop().context("org a")?;
        Ok(Api {
            router: agentops_query_api::app(pool.clone(), Duration::from_millis(100)),
            pool,
            a,
            b,
        })
    }

    /// One request; the status and the JSON body (`null` when empty).
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(match body {
                Some(b) => Body::from(b.to_string()),
                None => Body::empty(),
            })?;
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {path}: {}", String::from_utf8_lossy(&bytes)))?
        };
        Ok((status, v))
    }

    /// A request that must answer `want`.
    async fn expect(
        &self,
        want: StatusCode,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, v) = self.call(method, path, key, body).await?;
        ensure!(
            status == want,
            "{method} {path}: {status} (wanted {want}) {v}"
        );
        Ok(v)
    }

    /// A 400 naming `field`.
    async fn expect_400(&self, method: &str, path: &str, body: Value, field: &str) -> Result<()> {
        let v = self
            .expect(
                StatusCode::BAD_REQUEST,
                method,
                path,
                &self.a.admin,
                Some(body.clone()),
            )
            .await?;
        ensure!(
            v["error"]["field"] == json!(field),
            "{method} {path} {body}: expected field {field}, got {v}"
        );
        ensure!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        Ok(())
    }

    async fn audit_actions(&self, org: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT action FROM audit_log WHERE org_id = $1 ORDER BY id")
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }
}

fn approx(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// An array of numbers (Postgres renders `80.0` as `80`).
fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}
