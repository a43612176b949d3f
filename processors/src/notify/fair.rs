//! The dispatcher's bookkeeping, so no org or channel can take every
//! delivery slot: what is in flight per org and per channel (each bounded),
//! and a circuit breaker per channel. No I/O here.
//!
//! Breaker: after `failures` consecutive failed attempts (timeouts, 5xx,
//! 408/429, network errors) a channel is open for `cooldown`: none of its
//! deliveries is claimed. Then it is half open: one delivery is tried; a
//! success closes it, a failure opens it for another `cooldown`. Permanent
//! answers (4xx, refused destinations) do not count: they hold no slot.
//! Both are per processor instance.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::deliver::Attempted;
use super::store::Room;

/// Limits of one dispatcher.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) total: usize,
    pub(crate) per_org: usize,
    pub(crate) per_channel: usize,
    /// Consecutive failures that open a channel's breaker (0: never).
    pub(crate) breaker_failures: u32,
    pub(crate) breaker_cooldown: Duration,
}

#[derive(Debug, Default)]
struct Breaker {
    /// Consecutive failed attempts.
    failures: u32,
    /// Open until then; past it, half open (one probe).
    open_until: Option<Instant>,
}

/// In-flight deliveries per org and channel, and the channels' breakers.
#[derive(Debug)]
pub(crate) struct Slots {
    limits: Limits,
    inflight: usize,
    orgs: HashMap<String, usize>,
    channels: HashMap<Uuid, usize>,
    breakers: HashMap<Uuid, Breaker>,
}

fn room(limit: usize, used: usize) -> i32 {
    i32::try_from(limit.saturating_sub(used)).unwrap_or(i32::MAX)
}

impl Slots {
    pub(crate) fn new(limits: Limits) -> Slots {
        Slots {
            limits: Limits {
                total: limits.total.max(1),
                per_org: limits.per_org.max(1),
                per_channel: limits.per_channel.max(1),
                ..limits
            },
            inflight: 0,
            orgs: HashMap::new(),
            channels: HashMap::new(),
            breakers: HashMap::new(),
        }
    }

    /// Deliveries in flight.
    #[cfg(test)]
    fn inflight(&self) -> usize {
        self.inflight
    }

    /// What may be claimed now; None when every slot is taken.
    pub(crate) fn room(&self, now: Instant) -> Option<Room> {
        let total = self.limits.total.saturating_sub(self.inflight);
        if total == 0 {
            return None;
        }
        let mut channels: HashMap<Uuid, i32> = self
            .channels
            .iter()
            .map(|(c, n)| (*c, room(self.limits.per_channel, *n)))
            .collect();
        for (c, b) in &self.breakers {
            let cap = match b.open_until {
                Some(t) if t > now => 0,
                // Half open: one probe at a time.
                Some(_) => room(1, self.channels.get(c).copied().unwrap_or(0)),
                None => continue,
            };
            let r = channels.entry(*c).or_insert(cap);
            *r = (*r).min(cap);
        }
        Some(Room {
            total: total as i64,
            channels: channels.into_iter().collect(),
            channel_default: room(self.limits.per_channel, 0),
            orgs: self
                .orgs
                .iter()
                .map(|(o, n)| (o.clone(), room(self.limits.per_org, *n)))
                .collect(),
            org_default: room(self.limits.per_org, 0),
        })
    }

    /// A claimed delivery starts.
    pub(crate) fn start(&mut self, org: &str, channel: Uuid) {
        self.inflight += 1;
        *self.orgs.entry(org.to_owned()).or_default() += 1;
        *self.channels.entry(channel).or_default() += 1;
    }

    /// A delivery's attempt ended (`None`: its task panicked).
    pub(crate) fn done(
        &mut self,
        org: &str,
        channel: Uuid,
        result: Option<Attempted>,
        now: Instant,
    ) {
        self.inflight = self.inflight.saturating_sub(1);
        if let Some(n) = self.orgs.get_mut(org) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.orgs.remove(org);
            }
        }
        if let Some(n) = self.channels.get_mut(&channel) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.channels.remove(&channel);
            }
        }
        match result {
            Some(Attempted::Delivered) => {
                self.breakers.remove(&channel);
            }
            Some(Attempted::Failed { .. }) if self.limits.breaker_failures > 0 => {
                let b = self.breakers.entry(channel).or_default();
                b.failures = b.failures.saturating_add(1);
                let half_open = b.open_until.is_some_and(|t| t <= now);
                if half_open || b.failures >= self.limits.breaker_failures {
                    b.open_until = Some(now + self.limits.breaker_cooldown);
                    tracing::warn!(
                        %channel,
                        failures = b.failures,
                        cooldown_ms = self.limits.breaker_cooldown.as_millis() as u64,
                        "notification channel circuit breaker open"
                    );
                }
            }
            _ => {}
        }
    }

    /// When a breaker's cool-down ends next (its deliveries can be claimed).
    pub(crate) fn next_reopen(&self, now: Instant) -> Option<Instant> {
        self.breakers
            .values()
            .filter_map(|b| b.open_until)
            .filter(|t| *t > now)
            .min()
    }

    /// Whether a channel's breaker is open (for tests and logs).
    #[cfg(test)]
    fn is_open(&self, channel: Uuid, now: Instant) -> bool {
        self.breakers
            .get(&channel)
            .and_then(|b| b.open_until)
            .is_some_and(|t| t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Slots {
        Slots::new(Limits {
            total: 16,
            per_org: 4,
            per_channel: 2,
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
        })
    }

    fn org_room(r: &Room, org: &str) -> i32 {
        r.orgs
            .iter()
            .find(|(o, _)| o == org)
            .map_or(r.org_default, |(_, n)| *n)
    }

    fn channel_room(r: &Room, c: Uuid) -> i32 {
        r.channels
            .iter()
            .find(|(id, _)| *id == c)
            .map_or(r.channel_default, |(_, n)| *n)
    }

    #[test]
    fn an_org_and_a_channel_get_their_share_only() {
        let mut s = slots();
        let now = Instant::now();
        let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
        s.start("a", c1);
        s.start("a", c1);
        s.start("a", c2);
        let r = s.room(now).unwrap();
        assert_eq!(r.total, 13);
        assert_eq!(org_room(&r, "a"), 1);
        assert_eq!(org_room(&r, "b"), 4);
        assert_eq!(channel_room(&r, c1), 0);
        assert_eq!(channel_room(&r, c2), 1);
        s.done("a", c1, Some(Attempted::Delivered), now);
        let r = s.room(now).unwrap();
        assert_eq!((org_room(&r, "a"), channel_room(&r, c1)), (2, 1));
        assert_eq!(s.inflight(), 2);
    }

    #[test]
    fn no_room_when_every_slot_is_taken() {
        let mut s = Slots::new(Limits {
            total: 2,
            ..slots().limits
        });
        s.start("a", Uuid::new_v4());
        s.start("b", Uuid::new_v4());
        assert!(s.room(Instant::now()).is_none());
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_half_opens_after_cooldown() {
        let mut s = slots();
        let c = Uuid::new_v4();
        let t0 = Instant::now();
        let failed = Some(Attempted::Failed { retry_in: None });
        for _ in 0..2 {
            s.start("a", c);
            s.done("a", c, failed, t0);
        }
        assert!(!s.is_open(c, t0));
        // A permanent answer neither counts nor resets.
        s.start("a", c);
        s.done("a", c, Some(Attempted::Other), t0);
        s.start("a", c);
        s.done("a", c, failed, t0);
        assert!(s.is_open(c, t0));
        assert_eq!(channel_room(&s.room(t0).unwrap(), c), 0);
        assert_eq!(s.next_reopen(t0), Some(t0 + Duration::from_secs(30)));

        // Half open: one probe; its failure opens it again at once.
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(channel_room(&s.room(t1).unwrap(), c), 1);
        s.start("a", c);
        assert_eq!(channel_room(&s.room(t1).unwrap(), c), 0);
        s.done("a", c, failed, t1);
        assert!(s.is_open(c, t1));

        // A successful probe closes it.
        let t2 = t1 + Duration::from_secs(31);
        s.start("a", c);
        s.done("a", c, Some(Attempted::Delivered), t2);
        assert!(!s.is_open(c, t2));
        assert_eq!(channel_room(&s.room(t2).unwrap(), c), 2);
    }

    #[test]
    fn breaker_off_with_zero_failures() {
        let mut s = Slots::new(Limits {
            breaker_failures: 0,
            ..slots().limits
        });
        let c = Uuid::new_v4();
        let now = Instant::now();
        for _ in 0..10 {
            s.start("a", c);
            s.done("a", c, Some(Attempted::Failed { retry_in: None }), now);
        }
        assert!(!s.is_open(c, now));
    }
}
