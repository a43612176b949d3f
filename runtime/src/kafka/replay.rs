//! Reading a topic's whole retained log once, up to where it ended when the
//! read began: the replays of `rebuild` and `recompute`.
//!
//! The end is each partition's high watermark at the start. A consumer
//! never sees every offset below it: with `read_committed` the commit and
//! abort markers of transactions (the transactional enrich stage writes
//! them) and the records of aborted transactions are skipped. So a partition
//! is finished either by its record at `end - 1` or, when that offset is
//! one the consumer skips, by reaching the end of the partition
//! (`enable.partition.eof`) with its position at or past `end`.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;
use crate::Result;

/// A consumer assigned to the whole retained log of one topic.
pub struct WholeLog {
    consumer: StreamConsumer,
    topic: String,
    /// Where each partition not yet finished ends (exclusive).
    end: HashMap<i32, i64>,
    /// All partitions of the topic.
    pub partitions: usize,
    /// Offsets between the watermarks when the read began (records, plus
    /// any transaction markers among them).
    pub total: u64,
}

impl WholeLog {
    /// Assign a consumer (group `group`, used for nothing but its name:
    /// nothing is committed) to every non-empty partition of `topic`, from
    /// its low watermark to its high watermark as of now.
    pub fn open(cfg: &KafkaConfig, group: &str, topic: &str) -> Result<WholeLog> {
        let consumer: StreamConsumer = super::consumer_config(cfg, group)
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .create_with_context(DefaultConsumerContext)?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(crate::Error::Topic {
                topic: topic.to_owned(),
                message: "no partitions (does it exist?)".into(),
            });
        }
        let mut log = WholeLog {
            consumer,
            topic: topic.to_owned(),
            end: HashMap::new(),
            partitions: partitions.len(),
            total: 0,
        };
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            let (low, high) = log.consumer.fetch_watermarks(topic, p, timeout)?;
            log.total += (high - low).max(0) as u64;
            if high > low {
                log.end.insert(p, high);
                tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
            }
        }
        if !log.end.is_empty() {
            log.consumer.assign(&tpl)?;
        }
        Ok(log)
    }

    /// Whether every partition has been read to its end.
    pub fn done(&self) -> bool {
        self.end.is_empty()
    }

    /// The next records before the end: waits for the first, then takes
    /// what arrives within `linger`, up to `max`. May be empty when the last
    /// partitions finished on offsets the consumer skips. `None` once
    /// `shutdown` fires.
    pub async fn next_batch(
        &mut self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Vec<OwnedMessage>> {
        let mut batch = Vec::new();
        let mut deadline = None;
        while !self.end.is_empty() && batch.len() < max {
            let received = match deadline {
                None => tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    m = self.consumer.recv() => m,
                },
                Some(d) => match tokio::time::timeout_at(d, self.consumer.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            match received {
                Ok(m) => {
                    let p = m.partition();
                    let Some(&end) = self.end.get(&p) else {
                        continue; // finished: a record written after the read began
                    };
                    if m.offset() >= end {
                        continue;
                    }
                    if m.offset() + 1 >= end {
                        self.end.remove(&p);
                    }
                    batch.push(m.detach());
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + linger);
                }
                Err(KafkaError::PartitionEOF(p)) => self.reached_eof(p),
                Err(e) => {
                    super::receive_error(&e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Some(batch)
    }

    /// At the end of partition `p` as the consumer sees it: finished if its
    /// position is at or past `p`'s end (the rest were skipped markers or
    /// aborted records). Before the end (a transaction still open at the
    /// start), the read goes on.
    fn reached_eof(&mut self, p: i32) {
        let Some(&end) = self.end.get(&p) else {
            return;
        };
        let position = self.consumer.position().ok().and_then(|tpl| {
            match tpl.find_partition(&self.topic, p)?.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }
        });
        if position.is_some_and(|o| o >= end) {
            self.end.remove(&p);
        }
    }
}
