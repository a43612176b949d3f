//! Plain mode: drop the partitions of `events` and of the per-minute and
//! per-hour levels past their retention, at most hourly (whole partitions,
//! never row by row). TimescaleDB mode has retention policies instead.

use std::time::{Duration, Instant};

use agentops_runtime::storage::{self, Mode, StorageConfig};
use sqlx::PgPool;

pub(crate) struct Retention {
    cfg: StorageConfig,
    next: Option<Instant>,
}

impl Retention {
    pub(crate) fn new(mode: Mode, cfg: &StorageConfig) -> Self {
        let active =
            mode == Mode::Postgres && storage::partitioned().any(|p| p.retention_days(cfg) > 0);
        Self {
            cfg: cfg.clone(),
            next: active.then(Instant::now),
        }
    }

    pub(crate) async fn maybe_run(&mut self, pool: &PgPool) {
        let Some(next) = self.next else { return };
        if Instant::now() < next {
            return;
        }
        self.next = Some(Instant::now() + Duration::from_secs(3600));
        let today = chrono::Utc::now().date_naive();
        let result = match pool.acquire().await {
            Ok(mut conn) => storage::drop_expired_partitions(&mut conn, &self.cfg, today).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "dropping expired partitions failed; next try in an hour");
        }
    }
}
