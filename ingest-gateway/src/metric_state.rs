//! Cumulative counters into increments, counted once across gateways,
//! retries and exporter restarts. Each stream's last point is a row of
//! `otlp_metric_streams` (org, sha256 of the stream's identity), read and
//! written under a row lock in one transaction per request:
//!
//! | point (start S, time T, value V) vs the row | increment | row |
//! |---|---|---|
//! | no row | V (the total since the stream started) | (S, T, V, prev 0) |
//! | S later than the row's (the exporter restarted) | V | (S, T, V, prev 0) |
//! | same S, T later | V − last (a total that went down without a new start is a reset: V) | (S, T, V, prev last) |
//! | same S, same T (a re-export) | V − prev: the same increment as the first time, so the same event | unchanged |
//! | S or T earlier | none (counted already) | unchanged |
//!
//! Streams not seen for 8 days (past the late-data window) are forgotten.

use agentops_schemas::otlp::metrics::Point;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Increments of `points`: delta points as they are, cumulative ones from
/// the stream state (`None`: nothing new).
pub(crate) async fn increments(
    pool: &PgPool,
    org: &str,
    points: &[Point],
) -> Result<Vec<Option<f64>>, sqlx::Error> {
    let mut out = agentops_schemas::otlp::metrics::delta_increments(points);
    let mut order: Vec<usize> = (0..points.len())
        .filter(|i| points[*i].cumulative)
        .collect();
    if order.is_empty() {
        return Ok(out);
    }
    // Stream by stream, oldest point first; a fixed order of row locks.
    let keys: Vec<String> = points
        .iter()
        .map(|p| hex::encode(Sha256::digest(p.stream.as_bytes())))
        .collect();
    order.sort_by(|a, b| (&keys[*a], points[*a].time_ns).cmp(&(&keys[*b], points[*b].time_ns)));
    let mut tx = pool.begin().await?;
    for i in order {
        let p = &points[i];
        let (s, t, v) = (to_i64(p.start_ns), to_i64(p.time_ns), p.value);
        let row: Option<(i64, i64, f64, f64)> = sqlx::query_as(
            "SELECT start_ns, last_ns, last_value, prev_value FROM otlp_metric_streams
             WHERE org_id = $1 AND stream = $2 FOR UPDATE",
        )
        .bind(org)
        .bind(&keys[i])
        .fetch_optional(&mut *tx)
        .await?;
        let (delta, write) = match row {
            None => (Some(v), Some((s, t, v, 0.0))),
            Some((rs, _, _, _)) if s > rs => (Some(v), Some((s, t, v, 0.0))),
            Some((rs, _, _, _)) if s < rs => (None, None),
            Some((_, rt, last, _)) if t > rt => {
                if v >= last {
                    (Some(v - last), Some((s, t, v, last)))
                } else {
                    (Some(v), Some((s, t, v, 0.0)))
                }
            }
            Some((_, rt, _, prev)) if t == rt => (Some(v - prev), None),
            Some(_) => (None, None),
        };
        out[i] = delta.filter(|d| d.is_finite());
        if let Some((s, t, v, prev)) = write {
            sqlx::query(
                "INSERT INTO otlp_metric_streams
                   (org_id, stream, start_ns, last_ns, last_value, prev_value, seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, now())
                 ON CONFLICT (org_id, stream) DO UPDATE SET start_ns = $3, last_ns = $4,
                   last_value = $5, prev_value = $6, seen_at = now()",
            )
            .bind(org)
            .bind(&keys[i])
            .bind(s)
            .bind(t)
            .bind(v)
            .bind(prev)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    // Now and then, forget streams past the late-data window.
    if rand::random::<u8>() == 0 {
        let _ = sqlx::query(
            "DELETE FROM otlp_metric_streams WHERE seen_at < now() - interval '8 days'",
        )
        .execute(pool)
        .await;
    }
    Ok(out)
}

fn to_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}
