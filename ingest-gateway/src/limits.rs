//! Admission control: a bound on requests in flight and a token bucket per
//! org (shared by all its keys: N keys never give N times the limit).
//!
//! Both answer 429 with `Retry-After` instead of queueing: a client that
//! backs off is cheaper than a gateway whose memory grows with its backlog.
//! The in-flight bound also bounds memory: at most `max_in_flight` bodies of
//! at most `max_body_bytes` (twice that while one is being decompressed) are
//! held at once.
//!
//! Buckets are per gateway instance: with N instances behind a balancer an
//! org may send up to N times its limit.
//!
//! No limit can make it panic: a rate of zero, a tiny one, NaN or infinity
//! waits at most [`MAX_WAIT`], and a poisoned lock is taken over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentops_runtime::keys::RateLimit;

/// Token buckets by org.
pub(crate) struct RateLimiter {
    default: Option<RateLimit>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The longest `Retry-After` the limiter answers.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets untouched for this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(600);

impl RateLimiter {
    /// `default` applies to orgs without a limit of their own; `None`
    /// means unlimited.
    pub(crate) fn new(default: Option<RateLimit>) -> Self {
        Self {
            default,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take `n` events' worth of tokens for `org`, under its `limit`
    /// (or the default). A request passes when the bucket holds
    /// `min(n, burst)` tokens and then takes all `n`, so a batch larger than
    /// the burst still passes when the bucket is full and the debt is paid
    /// by waiting: the sustained rate holds either way. Otherwise the answer
    /// is how long until it would pass.
    pub(crate) fn take(
        &self,
        org: &str,
        limit: Option<RateLimit>,
        n: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(limit) = limit.or(self.default) else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
        }
        // Whatever the configured numbers, the arithmetic stays finite.
        let rate = if limit.events_per_sec.is_finite() {
            limit.events_per_sec.max(0.0)
        } else {
            0.0
        };
        let burst = if limit.burst.is_finite() {
            limit.burst.max(1.0)
        } else {
            1.0
        };
        let b = match buckets.get_mut(org) {
            Some(b) => b,
            None => buckets.entry(org.to_owned()).or_insert(Bucket {
                tokens: burst,
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        let need = (n as f64).min(burst);
        if b.tokens >= need {
            b.tokens -= n as f64;
            Ok(())
        } else {
            let secs = (need - b.tokens) / rate;
            Err(Duration::try_from_secs_f64(secs)
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT))
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
        let k = "org-a";
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
        assert!(rl.take("org-b", None, 100, t0).is_ok());
    }

    #[test]
    fn a_batch_above_the_burst_passes_on_a_full_bucket_and_pays_by_waiting() {
        let rl = RateLimiter::new(limit(10.0, 100.0));
        let k = "org-a";
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
        let k = "org-a";
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(rl.take(k, None, 1_000_000, t0).is_ok());
        }
        let strict = RateLimiter::new(limit(1_000.0, 1_000.0));
        assert!(strict.take(k, limit(1.0, 5.0), 5, t0).is_ok());
        assert!(strict.take(k, limit(1.0, 5.0), 1, t0).is_err());
    }

    #[test]
    fn no_limit_makes_it_panic() {
        let t0 = Instant::now();
        for (rate, burst) in [
            (1e-300, 1.0),
            (0.0, 1.0),
            (-5.0, 10.0),
            (f64::NAN, f64::NAN),
            (f64::INFINITY, f64::INFINITY),
            (f64::MIN_POSITIVE, 0.0),
        ] {
            let rl = RateLimiter::new(None);
            let _ = rl.take("o", limit(rate, burst), 1, t0);
            let wait = rl.take("o", limit(rate, burst), 1_000, t0);
            assert!(
                wait.is_ok() || wait.unwrap_err() <= MAX_WAIT,
                "{rate} {burst}"
            );
            // Still usable afterwards.
            let _ = rl.take("o", limit(10.0, 10.0), 1, t0 + Duration::from_secs(10));
        }
    }

    #[test]
    fn keys_of_one_org_share_its_bucket() {
        let rl = RateLimiter::new(limit(10.0, 100.0));
        let t0 = Instant::now();
        // The gateway takes by org, whichever key sent the batch.
        assert!(rl.take("org-a", None, 100, t0).is_ok());
        assert!(rl.take("org-a", None, 1, t0).is_err());
        assert!(rl.take("org-b", None, 100, t0).is_ok());
    }
}
