//! `bench-console`: what an operator waits for on the console, over the
//! storage benchmark's history (`bench-queries` loads it; this adds the
//! `runs` projection built from the same events, and budgets): p50/p95 of
//! every endpoint the overview calls (the same URLs the console asks, in
//! the same order), the runs explorer's first page with two filters beside
//! the same page computed from raw events, and the `/healthz` round trip as
//! the HTTP floor. The Chromium draw time is measured by
//! `deploy/local/browser/bench-console.mjs` (run by `bench-storage.sh`).

use std::time::Instant;

use agentops_runtime::storage;
use anyhow::{ensure, Context, Result};
use chrono::NaiveDate;
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(clap::Args, Debug)]
pub struct ConsoleOptions {
    /// The database `bench-queries` loaded and the query API over it.
    #[command(flatten)]
    pub target: crate::bench_store::Target,
    /// An admin key of org `bench` (creates the budgets the gauges show).
    #[arg(long)]
    pub admin_key: String,
    /// Timed requests per endpoint.
    #[arg(long, default_value_t = 50)]
    pub repeat: usize,
}

/// The explorer's first page (failed runs that called gpt-4o-mini, last 24 h,
/// newest first) from raw events: the baseline of `GET /v1/runs`.
pub(crate) const RAW_RUNS_PAGE: &str = "
SELECT f.run_id FROM events f
WHERE f.org_id = 'bench' AND f.type = 'run_failed' AND f.ts >= now() - interval '24 hours'
  AND EXISTS (SELECT 1 FROM events m WHERE m.org_id = 'bench' AND m.run_id = f.run_id
              AND m.model = 'gpt-4o-mini')
ORDER BY f.ts DESC LIMIT 50";

/// What the overview asks for a 24 h window (`pages/overview.tsx`), the
/// explorer's first page with two filters, then the overview over other
/// windows and the cost explorer's breakdown.
const ENDPOINTS: [(&str, &str); 15] = [
    ("overview", "/v1/metrics/overview?window=24h"),
    ("budgets", "/v1/budgets/status"),
    (
        "series runs",
        "/v1/metrics/timeseries?metric=runs&window=24h&bucket=1h",
    ),
    (
        "series errors",
        "/v1/metrics/timeseries?metric=errors&window=24h&bucket=1h",
    ),
    (
        "series cost",
        "/v1/metrics/timeseries?metric=cost&window=24h&bucket=1h",
    ),
    ("top by cost", "/v1/metrics/top?by=cost&window=24h&limit=5"),
    ("top by runs", "/v1/metrics/top?by=runs&window=24h&limit=5"),
    ("recent failures", "/v1/failures/recent?limit=10"),
    ("compare", "/v1/metrics/compare?window=24h"),
    (
        "runs: failed + gpt-4o-mini",
        "/v1/runs?window=24h&status=failed&model=gpt-4o-mini&limit=50",
    ),
    ("overview 1h", "/v1/metrics/overview?window=1h"),
    ("overview 7d", "/v1/metrics/overview?window=7d"),
    ("overview 30d", "/v1/metrics/overview?window=30d"),
    (
        "cost by agent 24h",
        "/v1/metrics/cost?group=agent&window=24h",
    ),
    (
        "cost by model 7d",
        "/v1/metrics/cost?group=model&window=7d&bucket=1d",
    ),
];

/// The `q`-quantile (0..=1) of `v` (nearest rank).
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The runs projection of the history (folded from its events, once) and
/// the budgets the gauges read.
pub(crate) async fn build(
    pool: &PgPool,
    http: &reqwest::Client,
    query_url: &str,
    admin_key: &str,
) -> Result<()> {
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE org_id = 'bench'")
        .fetch_one(pool)
        .await?;
    if have == 0 {
        // A history kept from a build that loaded no runs: its runs, a day at a time.
        let t = Instant::now();
        let (first, last): (Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
            "SELECT min(ts AT TIME ZONE 'UTC')::date, max(ts AT TIME ZONE 'UTC')::date
             FROM events WHERE org_id = 'bench'",
        )
        .fetch_one(pool)
        .await?;
        if let (Some(first), Some(last)) = (first, last) {
            let days: Vec<_> = first.iter_days().take_while(|d| *d <= last).collect();
            let mut conn = pool.acquire().await?;
            storage::fold_history(
                &mut conn,
                "bench",
                &[],
                &days,
                storage::Fold::RunsOnly,
                |_| {},
            )
            .await?;
            sqlx::raw_sql("VACUUM ANALYZE runs").execute(pool).await?;
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE org_id = 'bench'")
            .fetch_one(pool)
            .await?;
        crate::log(&format!(
            "bench-console: built {n} runs from the events ({:.0} s)",
            t.elapsed().as_secs_f64()
        ));
    }
    // One budget per scope kind the gauges read: the org, an agent, a model.
    for body in [
        json!({"name": "org monthly", "period": "month", "limit_usd": 50_000.0}),
        json!({"name": "agent-7 daily", "period": "day", "limit_usd": 5.0, "scope_kind": "agent", "scope_value": "agent-7"}),
        json!({"name": "gpt-4o weekly", "period": "week", "limit_usd": 10_000.0, "scope_kind": "model", "scope_value": "gpt-4o"}),
    ] {
        let r = http
            .post(format!("{query_url}/v1/admin/budgets"))
            .bearer_auth(admin_key)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        ensure!(
            status == 201 || status == 409,
            "creating budget {body}: {status} {}",
            r.text().await?
        );
    }
    Ok(())
}

/// One GET with a key: milliseconds and the JSON body (an error unless 2xx).
pub(crate) async fn timed(http: &reqwest::Client, url: &str, key: &str) -> Result<(f64, Value)> {
    let t = Instant::now();
    let r = http.get(url).bearer_auth(key).send().await?;
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "{url}: {status} {body}");
    Ok((t.elapsed().as_secs_f64() * 1000.0, body))
}

pub async fn run(o: ConsoleOptions) -> Result<()> {
    let pool = agentops_runtime::db::connect(
        &agentops_runtime::config::DatabaseConfig {
            url: o.target.database_url.clone(),
            max_connections: 2,
            statement_timeout_ms: None,
            ..Default::default()
        },
        std::time::Duration::from_secs(30),
    )
    .await?;
    let http = reqwest::Client::new();
    build(&pool, &http, &o.target.query_url, &o.admin_key).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE org_id = 'bench'")
        .fetch_one(&pool)
        .await?;
    // The HTTP floor: the same client, server and key check without a query.
    let mut floor = Vec::new();
    for _ in 0..o.repeat {
        let t = Instant::now();
        http.get(format!("{}/healthz", o.target.query_url))
            .send()
            .await?;
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let floor_p50 = quantile(&mut floor, 0.5);
    let mut results = Vec::new();
    for (name, path) in ENDPOINTS {
        let url = format!("{}{path}", o.target.query_url);
        let (_, body) = timed(&http, &url, &o.target.key).await.context(name)?; // warm
        if name.starts_with("runs") {
            let n = body["runs"].as_array().map_or(0, Vec::len);
            ensure!(n > 0, "the explorer's page is empty: {body}");
        }
        let mut t = Vec::with_capacity(o.repeat);
        for _ in 0..o.repeat {
            t.push(timed(&http, &url, &o.target.key).await?.0);
        }
        let (p50, p95) = (quantile(&mut t, 0.5), quantile(&mut t, 0.95));
        println!("{name:<24} p50 {p50:7.1} ms   p95 {p95:7.1} ms");
        results.push(json!({"endpoint": name, "path": path,
            "p50_ms": (p50 * 10.0).round() / 10.0, "p95_ms": (p95 * 10.0).round() / 10.0}));
    }
    // The explorer's page from raw events, for the ratio.
    let mut raw = Vec::with_capacity(o.repeat);
    for _ in 0..o.repeat.min(10) {
        let t = Instant::now();
        sqlx::raw_sql(RAW_RUNS_PAGE).fetch_all(&pool).await?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let raw_p50 = quantile(&mut raw, 0.5);
    let api_p50 = results
        .last()
        .and_then(|r| r["p50_ms"].as_f64())
        .unwrap_or(f64::NAN);
    println!(
        "runs page from raw events p50 {raw_p50:.1} ms: raw/API {:.1}x; HTTP floor (/healthz) p50 {floor_p50:.2} ms",
        raw_p50 / api_p50
    );
    println!(
        "{}",
        json!({"bench": "console", "events": events, "repeat": o.repeat, "endpoints": results,
               "runs_page_raw_p50_ms": (raw_p50 * 10.0).round() / 10.0,
               "http_floor_p50_ms": (floor_p50 * 100.0).round() / 100.0})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.95), 95.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
        assert_eq!(quantile(&mut [7.0], 0.95), 7.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }
}
