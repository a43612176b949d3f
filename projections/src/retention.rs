//! Plain mode: drop `events` partitions past retention, at most hourly.
//! (TimescaleDB mode has a retention policy instead.)

use std::time::{Duration, Instant};

use agentops_runtime::storage::{self, Mode, StorageConfig};
use sqlx::PgPool;

pub(crate) struct Retention {
    days: u32,
    next: Option<Instant>,
}

impl Retention {
    pub(crate) fn new(mode: Mode, cfg: &StorageConfig) -> Self {
        let active = mode == Mode::Postgres && cfg.raw_retention_days > 0;
        Self {
            days: cfg.raw_retention_days,
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
            Ok(mut conn) => storage::drop_expired_partitions(&mut conn, self.days, today).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "dropping expired partitions failed; next try in an hour");
        }
    }
}
