//! One client's bounded frame queue: the hub pushes without ever waiting,
//! the client's socket task takes what is there. When the queue is full the
//! oldest frame goes (counted); the socket task reports the count before the
//! next frame it delivers (a `lost` frame).

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

/// Frames a client may have waiting.
pub(crate) const CAPACITY: usize = 200;

/// What the socket task takes in one go.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Batch {
    /// Frames dropped since the last batch (oldest first went).
    pub(crate) lost: u64,
    pub(crate) frames: Vec<Utf8Bytes>,
}

#[derive(Default)]
struct Inner {
    frames: VecDeque<Utf8Bytes>,
    lost: u64,
}

pub(crate) struct FrameQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    ready: Notify,
}

impl FrameQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                frames: VecDeque::with_capacity(capacity.min(16)),
                lost: 0,
            }),
            capacity: capacity.max(1),
            ready: Notify::new(),
        }
    }

    /// Queue `frame`, dropping the oldest when full; whether one was dropped.
    /// Never waits for the client.
    pub(crate) fn push(&self, frame: Utf8Bytes) -> bool {
        let dropped = {
            let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = if q.frames.len() >= self.capacity {
                q.frames.pop_front();
                q.lost += 1;
                true
            } else {
                false
            };
            q.frames.push_back(frame);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// Everything waiting (at most `max` frames) and the count lost since
    /// the last call.
    pub(crate) fn take(&self, max: usize) -> Batch {
        let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = q.frames.len().min(max);
        Batch {
            lost: std::mem::take(&mut q.lost),
            frames: q.frames.drain(..n).collect(),
        }
    }

    /// Frames waiting now.
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .len()
    }

    /// Resolves once a frame was pushed since the last wait (a push before
    /// the wait is not missed: `Notify` keeps one permit).
    pub(crate) async fn ready(&self) {
        self.ready.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(i: usize) -> Utf8Bytes {
        Utf8Bytes::from(i.to_string())
    }

    fn texts(b: &Batch) -> Vec<String> {
        b.frames.iter().map(|t| t.as_str().to_owned()).collect()
    }

    #[test]
    fn a_full_queue_drops_its_oldest_frames_and_counts_them() {
        let q = FrameQueue::new(3);
        let dropped: Vec<bool> = (0..5).map(|i| q.push(f(i))).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        assert_eq!(q.len(), 3);
        let b = q.take(100);
        assert_eq!(b.lost, 2);
        assert_eq!(texts(&b), ["2", "3", "4"]);
        // The count is reported once.
        q.push(f(5));
        let b = q.take(100);
        assert_eq!((b.lost, texts(&b)), (0, vec!["5".to_owned()]));
        assert_eq!(q.take(100), Batch::default());
    }

    #[test]
    fn take_is_bounded_and_keeps_order() {
        let q = FrameQueue::new(CAPACITY);
        for i in 0..250 {
            q.push(f(i));
        }
        let first = q.take(10);
        assert_eq!(first.lost, 50);
        assert_eq!(texts(&first)[0], "50");
        let rest = q.take(1000);
        assert_eq!(rest.lost, 0);
        assert_eq!(rest.frames.len(), CAPACITY - 10);
        assert_eq!(texts(&rest).last().map(String::as_str), Some("249"));
    }

    #[test]
    fn memory_stays_at_the_capacity() {
        let q = FrameQueue::new(CAPACITY);
        for i in 0..100_000 {
            q.push(f(i));
            assert!(q.len() <= CAPACITY);
        }
        assert_eq!(q.take(usize::MAX).lost, 100_000 - CAPACITY as u64);
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_missed() {
        let q = FrameQueue::new(2);
        q.push(f(1));
        tokio::time::timeout(std::time::Duration::from_secs(1), q.ready())
            .await
            .unwrap();
    }
}
