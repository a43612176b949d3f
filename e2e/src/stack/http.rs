//! HTTP against a stack: the gateway's ingest endpoints, the query API with
//! the read key, and the components' /metrics.

use anyhow::{bail, Result};
use serde_json::Value;

use super::{Component, Stack};

impl Stack {
    /// Base URLs of every gateway instance.
    pub fn gateway_urls(&self) -> Vec<String> {
        self.ports[&Component::Gateway]
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect()
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

    /// Create a budget (`POST /v1/admin/budgets` with the admin key); its id.
    pub async fn create_budget(&self, body: &Value) -> Result<String> {
        let r = self
            .http
            .post(format!("{}/v1/admin/budgets", self.query_url))
            .bearer_auth(&self.admin_key)
            .json(body)
            .send()
            .await?;
        let status = r.status();
        let answer: Value = r.json().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /v1/admin/budgets {body}: {status} {answer}");
        }
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("budget created without an id: {answer}"))
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
