//! Admission control: a bound on requests in flight and a token bucket per
//! API key.
//!
//! Both answer 429 with `Retry-After` instead of queueing: a client that
//! backs off is cheaper than a gateway whose memory grows with its backlog.
//! The in-flight bound also bounds memory: at most `max_in_flight` bodies of
//! at most `max_body_bytes` (twice that while one is being decompressed) are
//! held at once.
//!
//! Buckets are per gateway instance: with N instances behind a balancer a
//! key may send up to N times its limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentops_runtime::keys::RateLimit;

/// Token buckets by API key id.
pub(crate) struct RateLimiter {
    default: Option<RateLimit>,
    buckets: Mutex<HashMap<uuid::Uuid, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets untouched for this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(600);

impl RateLimiter {
    /// `default` applies to keys whose org has no limit of its own; `None`
    /// means unlimited.
    pub(crate) fn new(default: Option<RateLimit>) -> Self {
        Self {
            default,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take `n` events' worth of tokens for `key`, under the org's `limit`
    /// (or the default). A request passes when the bucket holds
    /// `min(n, burst)` tokens and then takes all `n`, so a batch larger than
    /// the burst still passes when the bucket is full and the debt is paid
    /// by waiting: the sustained rate holds either way. Otherwise the answer
    /// is how long until it would pass.
    pub(crate) fn take(
        &self,
        key: uuid::Uuid,
        limit: Option<RateLimit>,
        n: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(limit) = limit.or(self.default) else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * limit.events_per_sec).min(limit.burst);
        b.at = now;
        let need = (n as f64).min(limit.burst);
        if b.tokens >= need {
            b.tokens -= n as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (need - b.tokens) / limit.events_per_sec,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(events_per_sec: f64, burst: f64) -> Option<RateLimit> {
        Some(RateLimit {
            events_per_sec,
            burst,
        })
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rl = RateLimiter::new(limit(10.0, 100.0));
        let k = uuid::Uuid::new_v4();
        let t0 = Instant::now();
        assert!(rl.take(k, None, 60, t0).is_ok());
        let wait = rl.take(k, None, 60, t0).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(2),
            "40 tokens left, 20 more at 10/s"
        );
        assert!(rl
            .take(k, None, 60, t0 + Duration::from_millis(1900))
            .is_err());
        assert!(rl.take(k, None, 60, t0 + Duration::from_secs(2)).is_ok());
        // Another key has its own bucket.
        assert!(rl.take(uuid::Uuid::new_v4(), None, 100, t0).is_ok());
    }

    #[test]
    fn a_batch_above_the_burst_passes_on_a_full_bucket_and_pays_by_waiting() {
        let rl = RateLimiter::new(limit(10.0, 100.0));
        let k = uuid::Uuid::new_v4();
        let t0 = Instant::now();
        assert!(rl.take(k, None, 250, t0).is_ok());
        // 150 tokens of debt + a full bucket of 100 needed: 25 s at 10/s.
        assert_eq!(
            rl.take(k, None, 250, t0).unwrap_err(),
            Duration::from_secs(25)
        );
        assert!(rl.take(k, None, 1, t0 + Duration::from_secs(14)).is_err());
        assert!(rl.take(k, None, 1, t0 + Duration::from_secs(16)).is_ok());
    }

    #[test]
    fn the_orgs_limit_overrides_the_default_and_none_is_unlimited() {
        let rl = RateLimiter::new(None);
        let k = uuid::Uuid::new_v4();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(rl.take(k, None, 1_000_000, t0).is_ok());
        }
        let strict = RateLimiter::new(limit(1_000.0, 1_000.0));
        assert!(strict.take(k, limit(1.0, 5.0), 5, t0).is_ok());
        assert!(strict.take(k, limit(1.0, 5.0), 1, t0).is_err());
    }
}
