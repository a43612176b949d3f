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

    /// Rows in the events table.
    pub async fn event_rows(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}
