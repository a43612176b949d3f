//! The in-process hub: the connected clients of each org, and publishing a
//! frame to those whose filter admits it. Publishing takes a read lock and
//! pushes into each client's [`FrameQueue`] (a short mutex, never an
//! await): a slow client only ever loses its own oldest frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use agentops_runtime::http::Health;
use agentops_runtime::shutdown::CancellationToken;
use serde_json::json;

use super::filter::Filter;
use super::frame::Frame;
use super::queue::{FrameQueue, CAPACITY};
use super::{telemetry, LiveConfig};

/// One connected client.
pub(crate) struct Client {
    id: u64,
    org_id: String,
    pub(crate) queue: FrameQueue,
    filter: Mutex<Filter>,
}

impl Client {
    pub(crate) fn set_filter(&self, f: Filter) {
        *self.filter.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }
}

/// Where the Kafka feed is (`/healthz` detail `live_feed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FeedState {
    /// `live.enabled = false`, or a hub without a feed (in-process tests).
    Off,
    /// Connecting, or waiting for its partitions.
    Starting,
    /// Partitions assigned: frames flow.
    Streaming,
    /// The brokers cannot be reached (the client keeps reconnecting).
    Unreachable(String),
}

pub(crate) struct Hub {
    pub(crate) config: LiveConfig,
    orgs: RwLock<HashMap<String, Vec<Arc<Client>>>>,
    next_id: AtomicU64,
    feed: Mutex<FeedState>,
    /// Cancelled on shutdown: every socket closes with 1001.
    pub(crate) shutdown: CancellationToken,
}

/// A client's place in the hub; leaving drops it.
pub(crate) struct Registration {
    hub: Arc<Hub>,
    pub(crate) client: Arc<Client>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut orgs = self.hub.orgs.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = orgs.get_mut(&self.client.org_id) {
            list.retain(|c| c.id != self.client.id);
            if list.is_empty() {
                orgs.remove(&self.client.org_id);
            }
        }
        telemetry::clients(orgs.values().map(Vec::len).sum());
    }
}

/// The cap a new client hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    Process(usize),
    Org(usize),
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::Process(n) => write!(f, "too many live clients on this instance ({n}); retry"),
            Full::Org(n) => write!(f, "too many live clients for this org ({n}); retry"),
        }
    }
}

impl Hub {
    pub(crate) fn new(config: LiveConfig, shutdown: CancellationToken) -> Arc<Hub> {
        Arc::new(Hub {
            config,
            orgs: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            feed: Mutex::new(FeedState::Off),
            shutdown,
        })
    }

    /// Add a client of `org`, unless a cap is reached.
    pub(crate) fn join(self: &Arc<Self>, org: &str, filter: Filter) -> Result<Registration, Full> {
        let mut orgs = self.orgs.write().unwrap_or_else(|p| p.into_inner());
        let total: usize = orgs.values().map(Vec::len).sum();
        if total >= self.config.max_clients {
            return Err(Full::Process(self.config.max_clients));
        }
        let list = orgs.entry(org.to_owned()).or_default();
        if list.len() >= self.config.max_clients_per_org {
            return Err(Full::Org(self.config.max_clients_per_org));
        }
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            org_id: org.to_owned(),
            queue: FrameQueue::new(CAPACITY),
            filter: Mutex::new(filter),
        });
        list.push(client.clone());
        telemetry::clients(total + 1);
        Ok(Registration {
            hub: self.clone(),
            client,
        })
    }

    /// Queue `frame` for every client of its org whose filter admits it;
    /// how many got it. Never waits for a client.
    pub(crate) fn publish(&self, frame: &Frame) -> usize {
        let orgs = self.orgs.read().unwrap_or_else(|p| p.into_inner());
        let Some(list) = orgs.get(&frame.org_id) else {
            return 0;
        };
        let (mut queued, mut dropped) = (0, 0);
        for c in list {
            let admits = c
                .filter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .admits(frame.kind, frame.agent_id.as_deref());
            if admits {
                queued += 1;
                dropped += usize::from(c.queue.push(frame.text.clone()));
            }
        }
        telemetry::frames_dropped(dropped);
        queued
    }

    /// Connected clients.
    pub(crate) fn clients(&self) -> usize {
        let orgs = self.orgs.read().unwrap_or_else(|p| p.into_inner());
        orgs.values().map(Vec::len).sum()
    }

    /// Record the gauges (clients, frames waiting in all queues).
    pub(crate) fn sample(&self) {
        let orgs = self.orgs.read().unwrap_or_else(|p| p.into_inner());
        let (clients, queued) = orgs
            .values()
            .flatten()
            .fold((0, 0), |(n, q), c| (n + 1, q + c.queue.len()));
        telemetry::clients(clients);
        telemetry::queued_frames(queued);
    }

    pub(crate) fn set_feed(&self, state: FeedState) {
        let mut f = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        if *f != state {
            match &state {
                FeedState::Unreachable(e) => {
                    tracing::warn!(error = %e, "live feed: brokers unreachable; reconnecting")
                }
                FeedState::Streaming => tracing::info!("live feed streaming"),
                _ => {}
            }
            *f = state;
        }
    }

    pub(crate) fn feed(&self) -> FeedState {
        self.feed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `/healthz` detail `live_feed`: `{state, clients, error?}`. The live
    /// feed never makes the API unready: `/v1/live` accepts clients while
    /// the feed reconnects.
    pub(crate) async fn report(&self, health: &Health) {
        let (state, error) = match self.feed() {
            FeedState::Off => ("off", None),
            FeedState::Starting => ("starting", None),
            FeedState::Streaming => ("streaming", None),
            FeedState::Unreachable(e) => ("unreachable", Some(e)),
        };
        health
            .set_detail(
                "live_feed",
                json!({"state": state, "clients": self.clients(), "error": error}),
            )
            .await;
    }

    /// Wait (at most `within`) for every socket to close after shutdown.
    pub(crate) async fn drained(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.clients() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::FrameType;
    use super::*;

    fn frame(org: &str, kind: FrameType, agent: &str) -> Frame {
        Frame {
            org_id: org.into(),
            kind,
            agent_id: Some(agent.into()),
            text: format!("{org}/{agent}").into(),
        }
    }

    fn hub(max: usize, per_org: usize) -> Arc<Hub> {
        Hub::new(
            LiveConfig {
                max_clients: max,
                max_clients_per_org: per_org,
                ..LiveConfig::default()
            },
            CancellationToken::new(),
        )
    }

    #[test]
    fn frames_go_to_their_org_and_filter_only() {
        let h = hub(10, 10);
        let a = h.join("a", Filter::default()).unwrap();
        let a_failed = h
            .join("a", Filter::from_query(Some("types=run.failed")).unwrap())
            .unwrap();
        let b = h.join("b", Filter::default()).unwrap();
        assert_eq!(h.publish(&frame("a", FrameType::RunStarted, "x")), 1);
        assert_eq!(h.publish(&frame("a", FrameType::RunFailed, "x")), 2);
        assert_eq!(h.publish(&frame("c", FrameType::RunFailed, "x")), 0);
        assert_eq!(a.client.queue.take(10).frames.len(), 2);
        assert_eq!(a_failed.client.queue.take(10).frames.len(), 1);
        assert!(b.client.queue.take(10).frames.is_empty());
        // A subscribe message replaces the filter.
        b.client
            .set_filter(Filter::from_query(Some("agent_id=y")).unwrap());
        h.publish(&frame("b", FrameType::RunStarted, "x"));
        h.publish(&frame("b", FrameType::RunStarted, "y"));
        let got = b.client.queue.take(10).frames;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_str(), "b/y");
    }

    #[test]
    fn caps_per_process_and_per_org_and_leaving_frees_a_place() {
        let h = hub(3, 2);
        let a1 = h.join("a", Filter::default()).unwrap();
        let _a2 = h.join("a", Filter::default()).unwrap();
        assert_eq!(h.join("a", Filter::default()).err(), Some(Full::Org(2)));
        let _b1 = h.join("b", Filter::default()).unwrap();
        assert_eq!(h.join("c", Filter::default()).err(), Some(Full::Process(3)));
        drop(a1);
        assert_eq!(h.clients(), 2);
        assert!(h.join("a", Filter::default()).is_ok());
    }

    #[test]
    fn a_client_that_never_reads_loses_only_its_own_frames() {
        let h = hub(10, 10);
        let slow = h.join("a", Filter::default()).unwrap();
        let fast = h.join("a", Filter::default()).unwrap();
        let mut fast_got = 0;
        for i in 0..1000 {
            h.publish(&frame("a", FrameType::RunStarted, &i.to_string()));
            fast_got += fast.client.queue.take(usize::MAX).frames.len();
        }
        assert_eq!(fast_got, 1000);
        let b = slow.client.queue.take(usize::MAX);
        assert_eq!(b.lost, 1000 - CAPACITY as u64);
        assert_eq!(b.frames.len(), CAPACITY);
        assert_eq!(b.frames[0].as_str(), format!("a/{}", 1000 - CAPACITY));
    }
}
