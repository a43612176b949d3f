//! The enrich stage exactly once inside Kafka (`exactly_once`).
//!
//! Batches go out in Kafka transactions: each transaction holds the
//! enriched records, dead letters and policy alerts of the batches handed
//! to it, and commits the raw offsets after them
//! (`send_offsets_to_transaction` with the consumer's group metadata).
//! Consumers reading `read_committed` (every consumer in the workspace) see
//! all of it or none of it. What was spent goes to the budget checker, and
//! alerts count as raised, only once the transaction has committed.
//! Policy violations and pauses are written to Postgres before (idempotent:
//! a batch read again writes nothing new).
//!
//! - **Transactions.** One is begun with a batch and takes the following
//!   ones (their records handed to the producer at once, acknowledgements
//!   awaited at the commit) until [`COMMIT_INTERVAL`] has passed; it is then
//!   committed in the background while the next batch is read and
//!   prepared, and the next transaction begins once it has committed, so
//!   each enriched partition keeps the raw order. An idle stage commits
//!   when the interval is up.
//! - **Failures.** A transaction that fails is aborted (after a fatal
//!   producer error the producer is replaced, which aborts it too). Every
//!   partition read into it, and into the batch prepared meanwhile, is then
//!   rewound to the group's committed offset (a stable fetch, KIP-447) and
//!   read again: nothing is skipped, and no offset is committed but with
//!   the records it covers. Run costs are forgotten (re-seeded from the
//!   projections), since the aborted events never reached them. A producer
//!   call that does not return within its bound counts as fatal (librdkafka's
//!   `send_offsets_to_transaction` can wait forever for a group coordinator
//!   that died, confluentinc/librdkafka#5456; see `transact::blocking`).
//! - **Rebalances** (cooperative-sticky). Rebalance callbacks run inside
//!   `recv`, so only while a batch is being read. Records of a partition
//!   revoked meanwhile are dropped from that batch (and the partition
//!   rewound if it came back). A transaction commits its offsets with the
//!   group metadata taken as its first batch was complete, before the next
//!   read: if they reach the coordinator after the group moved to a new
//!   generation they are refused (the transaction aborts); if they were
//!   accepted first, the partition's next owner, which fetches stable
//!   offsets, waits until the transaction ends. A revoked partition goes to
//!   another member only in a later generation than the one that revoked
//!   it, so its next owner starts exactly after the last committed
//!   transaction.
//! - **Fencing.** `transactional.id` is `<group>/<kafka.instance_id>`,
//!   stable across restarts: a restarted instance aborts its predecessor's
//!   open transaction as it starts (`init_transactions`). Without an
//!   instance id it is random, and a dead instance's open transaction holds
//!   its partitions (and the read_committed readers of the enriched topic)
//!   until the coordinator aborts it, [`TXN_TIMEOUT`] later. A fenced
//!   producer (a newer one with the same id, or the coordinator aborting a
//!   transaction that outlived [`TXN_TIMEOUT`], as across a broker restart:
//!   the client cannot tell them apart) is replaced like after any fatal
//!   error, and its partitions read again. Two live instances given the
//!   same instance id keep fencing each other: slow, never duplicated.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{assignment_of, prepare, Extra, Stage};
use crate::policy::RunCosts;
use crate::Config;
use transact::{commit, transactional_id, transactional_producer, Open, Outcome, Sink};

mod transact;

/// How long a transaction may stay open before the coordinator aborts it
/// (Kafka Streams' default under exactly-once), and so the longest a record
/// waits for its acknowledgement here (`message.timeout.ms`, at most
/// `kafka.delivery_timeout_ms`) before its transaction is aborted and redone.
const TXN_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on one blocking call: init, send offsets, commit or abort a
/// transaction, fetch committed offsets, seek.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a transaction takes batches before it is committed (Kafka
/// Streams' `commit.interval.ms` under exactly-once): what a commit costs is
/// paid once per interval, and `read_committed` readers see records up to
/// this much (plus the commit) later.
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// Most records in one transaction, whatever the interval.
const COMMIT_RECORDS: usize = 50_000;

/// (topic, partition).
type Part = (String, i32);

/// The consumer context: partitions revoked (or lost) since the stage last
/// looked; the lag of the group's partitions goes to `/metrics`.
#[derive(Clone)]
struct Revocations(Arc<Mutex<BTreeSet<Part>>>, Arc<str>);

impl Revocations {
    fn new(group: &str) -> Self {
        Self(Arc::default(), Arc::from(group))
    }

    fn take(&self) -> BTreeSet<Part> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for Revocations {
    fn stats(&self, stats: rdkafka::Statistics) {
        kafka::record_lag(&self.1, &stats);
    }
}

impl ConsumerContext for Revocations {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let mut gone = self.0.lock().unwrap_or_else(|e| e.into_inner());
                for e in tpl.elements() {
                    gone.insert((e.topic().to_owned(), e.partition()));
                }
                tracing::info!(partitions = tpl.count(), "enrich partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = tpl.count(), "enrich partitions assigned")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "enrich rebalance failed"),
        }
    }
}

type Consumed = StreamConsumer<Revocations>;

/// Seek each partition of `parts` still assigned to its committed offset
/// (the log start if none); `Ok(n)` partitions rewound. A partition not
/// being fetched yet (just assigned) starts from its committed offset anyway.
fn seek_committed(c: &Consumed, parts: &BTreeSet<Part>) -> KafkaResult<usize> {
    let assigned = c.assignment()?;
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        if assigned.find_partition(t, *p).is_some() {
            tpl.add_partition(t, *p);
        }
    }
    if tpl.count() == 0 {
        return Ok(0);
    }
    let committed = c.committed_offsets(tpl, CALL_TIMEOUT)?;
    let mut seek = TopicPartitionList::new();
    for e in committed.elements() {
        e.error()?;
        let at = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        seek.add_partition_offset(e.topic(), e.partition(), at)?;
    }
    let mut n = 0;
    for e in c.seek_partitions(seek, CALL_TIMEOUT)?.elements() {
        match e.error() {
            Ok(()) => n += 1,
            Err(KafkaError::OffsetFetch(
                RDKafkaErrorCode::State
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::PreviousInProgress,
            )) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(n)
}

/// Rewind `parts` to their committed offsets (retried until it works), so
/// what was read but not committed is read again. False on shutdown.
async fn rewind(
    consumer: &Arc<Consumed>,
    parts: &BTreeSet<Part>,
    shutdown: &CancellationToken,
) -> bool {
    if parts.is_empty() {
        return true;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        let (c, p) = (consumer.clone(), parts.clone());
        match tokio::task::spawn_blocking(move || seek_committed(&c, &p))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
        {
            Ok(n) => {
                tracing::info!(
                    partitions = n,
                    "enrich partitions rewound to their committed offsets"
                );
                return true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "rewinding to committed offsets failed, will retry")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn parts_of(batch: &[OwnedMessage]) -> BTreeSet<Part> {
    batch
        .iter()
        .map(|m| (m.topic().to_owned(), m.partition()))
        .collect()
}

/// A transaction being committed and the partitions read into it.
type Committing = (tokio::task::JoinHandle<Outcome>, BTreeSet<Part>);

/// How a transaction's end was settled.
enum Settled {
    Committed,
    /// Aborted; what it and anything read since covered is read again.
    Redo,
    Stop,
}

/// The transactional enrich loop's state (see the module doc).
struct Enrich {
    stage: Stage,
    config: Arc<Config>,
    id: String,
    producer: FutureProducer,
    consumer: Arc<Consumed>,
    revoked: Revocations,
    sink: Arc<Sink>,
    shutdown: CancellationToken,
    /// The transaction batches are handed to.
    open: Option<Open>,
    /// The previous one, committing meanwhile.
    committing: Option<Committing>,
    /// The assignment run costs were gathered under.
    assigned: Option<Vec<Part>>,
}

impl Enrich {
    /// Commit the open transaction in the background.
    fn start_commit(&mut self) {
        if let Some(open) = self.open.take() {
            let parts = open.parts();
            let task = tokio::spawn(commit(
                self.producer.clone(),
                self.sink.clone(),
                open,
                self.shutdown.clone(),
            ));
            self.committing = Some((task, parts));
        }
    }

    /// Act on a commit's outcome. After a failure, its partitions and
    /// `since` (read after it) are rewound and the producer replaced if
    /// need be.
    async fn settle(
        &mut self,
        outcome: Outcome,
        mut parts: BTreeSet<Part>,
        since: BTreeSet<Part>,
    ) -> agentops_runtime::Result<Settled> {
        match outcome {
            Outcome::Committed(alerted) => {
                // Remembered so later batches do not raise them again.
                self.stage.alerted.extend(alerted);
                Ok(Settled::Committed)
            }
            Outcome::Failed { fatal } => {
                // The aborted events never reached the projections.
                self.stage.run_costs = RunCosts::default();
                if fatal {
                    match transactional_producer(&self.config, &self.id, &self.shutdown).await? {
                        Some(p) => self.producer = p,
                        None => return Ok(Settled::Stop),
                    }
                }
                parts.extend(since);
                if rewind(&self.consumer, &parts, &self.shutdown).await {
                    Ok(Settled::Redo)
                } else {
                    Ok(Settled::Stop)
                }
            }
        }
    }

    /// The next batch, as [`kafka::next_batch`] reads it, except that while
    /// it waits for the first record the open transaction is committed when
    /// due and a commit is settled as soon as it ends (an idle stage neither
    /// holds records back nor sits on a failed transaction). `None` on
    /// shutdown.
    async fn next_batch(&mut self) -> agentops_runtime::Result<Option<Vec<OwnedMessage>>> {
        enum Event {
            Stop,
            Due,
            Ended(Outcome),
            Record(KafkaResult<OwnedMessage>),
        }
        let max = self.config.batch_max;
        let first = loop {
            let event = {
                let (consumer, shutdown) = (&self.consumer, &self.shutdown);
                // One commit at a time: the open transaction waits for the last.
                let due = self
                    .open
                    .as_ref()
                    .filter(|_| self.committing.is_none())
                    .map(Open::deadline);
                let committing = self.committing.as_mut().map(|(task, _)| task);
                let is_committing = committing.is_some();
                tokio::select! {
                    _ = shutdown.cancelled() => Event::Stop,
                    o = async { committing?.await.ok() }, if is_committing => {
                        Event::Ended(o.unwrap_or(Outcome::Failed { fatal: true }))
                    }
                    _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                        if due.is_some() => Event::Due,
                    m = consumer.recv() => Event::Record(m.map(|m| m.detach())),
                }
            };
            match event {
                Event::Stop => return Ok(None),
                Event::Due => self.start_commit(),
                Event::Ended(outcome) => {
                    let Some((_, parts)) = self.committing.take() else {
                        continue;
                    };
                    if let Settled::Stop = self.settle(outcome, parts, BTreeSet::new()).await? {
                        return Ok(None);
                    }
                }
                Event::Record(Ok(m)) => break m,
                Event::Record(Err(e)) => {
                    kafka::receive_error(&e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let mut batch = Vec::with_capacity(max.min(4096));
        batch.push(first);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.batch_linger_ms);
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                Ok(Err(e)) => kafka::receive_error(&e),
                Err(_) => break,
            }
        }
        Ok(Some(batch))
    }

    /// Read, prepare and hand over batches until shutdown.
    async fn run(&mut self) -> agentops_runtime::Result<()> {
        while let Some(batch) = self.next_batch().await? {
            let gone = self.revoked.take();
            let now_assigned = assignment_of(&self.consumer);
            let mine: HashSet<Part> = now_assigned.iter().flatten().cloned().collect();
            if now_assigned != self.assigned {
                // Run costs are only known for runs whose partitions stayed here.
                self.stage.run_costs = RunCosts::default();
                self.assigned = now_assigned;
            }
            // Records of a partition revoked while the batch was read are
            // not this instance's to commit; one assigned again is read again.
            let batch: Vec<OwnedMessage> = batch
                .into_iter()
                .filter(|m| {
                    let p = (m.topic().to_owned(), m.partition());
                    mine.contains(&p) && !gone.contains(&p)
                })
                .collect();
            let again: BTreeSet<Part> = gone.into_iter().filter(|p| mine.contains(p)).collect();
            // Taken before the next read (see the module doc); used if this
            // batch opens a transaction.
            let group = self.consumer.group_metadata();
            let read = parts_of(&batch);
            let mut extra = Extra::default();
            let prepared = if batch.is_empty() {
                Some((Vec::new(), Vec::new()))
            } else {
                prepare(&mut self.stage, &batch, &self.shutdown, Some(&mut extra)).await
            };
            let Some(prepared) = prepared else {
                break; // shutdown
            };
            if let Some((task, parts)) = self.committing.take() {
                let outcome = task.await.unwrap_or(Outcome::Failed { fatal: true });
                // This batch was read after that transaction: if it failed,
                // both are read again.
                let since = read.iter().chain(&again).cloned().collect();
                match self.settle(outcome, parts, since).await? {
                    Settled::Committed => {}
                    Settled::Redo => continue,
                    Settled::Stop => break,
                }
            }
            if !rewind(&self.consumer, &again, &self.shutdown).await {
                break;
            }
            if !batch.is_empty() {
                if self.open.is_none() {
                    let begun = group
                        .ok_or(KafkaError::Canceled)
                        .and_then(|g| Open::begin(&self.producer, g));
                    match begun {
                        Ok(open) => self.open = Some(open),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot begin an enrich transaction, reading the batch again");
                            if !rewind(&self.consumer, &read, &self.shutdown).await {
                                break;
                            }
                            continue;
                        }
                    }
                }
                if let Some(open) = self.open.as_mut() {
                    open.add(&self.producer, &self.sink, &batch, prepared, extra)
                        .await;
                }
            }
            if self.open.as_ref().is_some_and(Open::due) {
                self.start_commit();
            }
        }
        // Commit what was handed over, and let the last commit end (it
        // aborts if shutdown stops its retries).
        if let Some((task, _)) = self.committing.take() {
            let _ = task.await;
        }
        self.start_commit();
        if let Some((task, _)) = self.committing.take() {
            let _ = task.await;
        }
        Ok(())
    }
}

/// The transactional enrich stage (see the module doc).
pub(crate) async fn run(stage: Stage, shutdown: CancellationToken) -> agentops_runtime::Result<()> {
    let config = stage.config.clone();
    let id = transactional_id(&config);
    // Before joining the group: a predecessor's open transaction is aborted
    // first, so the offsets fetched on assignment are settled.
    let Some(producer) = transactional_producer(&config, &id, &shutdown).await? else {
        return Ok(());
    };
    let revoked = Revocations::new(&config.group);
    let consumer: Arc<Consumed> = Arc::new(kafka::consumer(
        &config.kafka,
        &config.group,
        revoked.clone(),
    )?);
    consumer.subscribe(&[&config.kafka.topic_raw])?;
    let sink = Arc::new(Sink {
        enriched: config.kafka.topic_enriched.clone(),
        alerts: config.kafka.topic_alerts.clone(),
        dlq: config.kafka.topic_dlq.clone(),
        spent: stage.spent.clone(),
    });
    tracing::info!(
        topic = %config.kafka.topic_raw,
        group = %config.group,
        transactional_id = %id,
        "enrich stage consuming, exactly once"
    );
    Enrich {
        stage,
        config,
        id,
        producer,
        consumer,
        revoked,
        sink,
        shutdown,
        open: None,
        committing: None,
        assigned: None,
    }
    .run()
    .await
}
