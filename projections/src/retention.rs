//! Drop the partitions past their retention, at most hourly (whole
//! partitions, never row by row): in plain mode those of `events` and of
//! the per-minute and per-hour levels; in TimescaleDB mode (retention
//! policies on the hypertable and the continuous aggregates) those of the
//! per-tag hour level, which the workers maintain in both modes.

use std::time::{Duration, Instant};

use agentops_runtime::storage::{self, Mode, StorageConfig};
use sqlx::PgPool;

pub(crate) struct Retention {
    mode: Mode,
    cfg: StorageConfig,
    next: Option<Instant>,
}

impl Retention {
    pub(crate) fn new(mode: Mode, cfg: &StorageConfig) -> Self {
        let active = storage::partitioned_in(mode).any(|p| p.retention_days(cfg) > 0);
        Self {
            mode,
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
            Ok(mut conn) => {
                storage::drop_expired_partitions(&mut conn, self.mode, &self.cfg, today).await
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "dropping expired partitions failed; next try in an hour");
        }
    }
}
