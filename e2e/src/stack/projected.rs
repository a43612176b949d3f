//! What the projections stored for a stack's org, and the checks that every
//! acknowledged event is there exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Stack;

impl Stack {
    /// Event ids of this stack's org in the projections, with how many rows
    /// each has (more than one would be a double count).
    pub async fn projected_ids(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_id::text, count(*)::int8 FROM events WHERE org_id = $1 GROUP BY 1",
        )
        .bind(&self.org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Wait until every event id in `acked` is projected and this org's
    /// projected events have not changed for 5 s (records refused with 503
    /// may still arrive later), then check that none is stored twice and that
    /// `agg_1h` counts exactly the stored events. Fails after 120 s without
    /// progress. Returns the projected ids (each with its row count, 1).
    pub async fn projected_once(&self, acked: &[&String]) -> Result<HashMap<String, i64>> {
        let mut last = (usize::MAX, Instant::now());
        let seen = loop {
            let seen = self.projected_ids().await?;
            if seen.len() != last.0 {
                last = (seen.len(), Instant::now());
            }
            let missing = acked.iter().filter(|id| !seen.contains_key(**id)).count();
            if missing == 0 && last.1.elapsed() > Duration::from_secs(5) {
                break seen;
            }
            anyhow::ensure!(
                last.1.elapsed() < Duration::from_secs(120),
                "projections stuck at {} events; {missing} of {} acknowledged events missing",
                seen.len(),
                acked.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        self.derived().await?;
        let dupes = seen.values().filter(|n| **n != 1).count();
        anyhow::ensure!(dupes == 0, "{dupes} events stored more than once");
        let (agg,): (i64,) =
            sqlx::query_as("SELECT COALESCE(sum(events), 0)::int8 FROM agg_1h WHERE org_id = $1")
                .bind(&self.org_id)
                .fetch_one(&self.pool)
                .await?;
        anyhow::ensure!(
            agg == seen.len() as i64,
            "agg_1h counts {agg} events, {} stored",
            seen.len()
        );
        Ok(seen)
    }

    /// Rows in the events table that the derived tables (levels, runs,
    /// agents, ...) count already: in plain mode the deriver folds written
    /// events a moment later, so a test waiting for N events waits for
    /// them to be derived too. Pending cost corrections hold the count
    /// back the same way.
    pub async fn event_rows(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut *conn)
            .await?;
        Ok(rows - agentops_runtime::storage::deferred::backlog(&mut conn).await?)
    }

    /// Wait until every stored event is derived and every correction
    /// applied (at most 120 s).
    pub async fn derived(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let mut conn = self.pool.acquire().await?;
            let left = agentops_runtime::storage::deferred::backlog(&mut conn).await?;
            if left == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "{left} events or corrections still not derived after 120 s"
            );
            drop(conn);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
