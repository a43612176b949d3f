//! The Kafka transaction: the transactional producer, the open transaction
//! batches are handed to, its commit with the offsets, and the abort on
//! failure (see [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::AgentEvent;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::super::{Extra, Record};
use super::{Part, CALL_TIMEOUT, COMMIT_INTERVAL, COMMIT_RECORDS, TXN_TIMEOUT};
use crate::budget::{Spent, SpentTx};
use crate::{telemetry, Config};

/// `<group>/<kafka.instance_id>`, or `<group>/<random>` without an instance id.
pub(super) fn transactional_id(config: &Config) -> String {
    match &config.kafka.instance_id {
        Some(id) => format!("{}/{id}", config.group),
        None => format!("{}/{}", config.group, uuid::Uuid::new_v4().simple()),
    }
}

/// Run a blocking producer call on a thread of its own, bounded by
/// [`CALL_TIMEOUT`] plus [`CALL_GRACE`]. librdkafka's transactional calls
/// take a timeout but do not always honour it: `send_offsets_to_transaction`
/// waits for the group coordinator with no deadline
/// (confluentinc/librdkafka#5456, #5511), and after two of three brokers
/// died and came back it never returned, freezing the stage. A call still
/// running past the bound is left behind on its thread (which holds its own
/// handle on the producer) and answers [`KafkaError::Canceled`], which
/// [`is_fatal`] counts as fatal: the producer is replaced, and the new one's
/// `init_transactions` aborts the transaction the old one was in. A plain
/// thread, not `spawn_blocking`: the runtime waits for its blocking tasks
/// at shutdown, and a hung call would hang the shutdown too.
async fn blocking<T, F>(producer: &FutureProducer, f: F) -> KafkaResult<T>
where
    T: Send + 'static,
    F: FnOnce(&FutureProducer) -> KafkaResult<T> + Send + 'static,
{
    let p = producer.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("enrich-txn-call".into())
        .spawn(move || {
            let _ = tx.send(f(&p));
        })
        .map_err(|_| KafkaError::Canceled)?;
    match tokio::time::timeout(CALL_TIMEOUT + CALL_GRACE, rx).await {
        Ok(Ok(result)) => result,
        // The call panicked.
        Ok(Err(_)) => Err(KafkaError::Canceled),
        Err(_) => {
            metrics::counter!("agentops_processor_stuck_transactional_calls_total").increment(1);
            tracing::warn!(
                bound_ms = (CALL_TIMEOUT + CALL_GRACE).as_millis() as u64,
                "a transactional producer call did not return within its bound; replacing the producer"
            );
            Err(KafkaError::Canceled)
        }
    }
}

/// How long past its own timeout a transactional call may take before it
/// is given up (see [`blocking`]).
const CALL_GRACE: Duration = Duration::from_secs(5);

/// A producer with transactions initialized (any earlier producer with the
/// same id fenced, its open transaction aborted); retried until it works.
/// `None` on shutdown.
pub(super) async fn transactional_producer(
    config: &Config,
    id: &str,
    shutdown: &CancellationToken,
) -> agentops_runtime::Result<Option<FutureProducer>> {
    let delivery = Duration::from_millis(config.kafka.delivery_timeout_ms.into()).min(TXN_TIMEOUT);
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut c = kafka::producer_config(&config.kafka, delivery);
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            TXN_TIMEOUT.as_millis().to_string(),
        );
        let producer: FutureProducer = c.create()?;
        match blocking(&producer, |p| p.init_transactions(CALL_TIMEOUT)).await {
            Ok(()) => {
                tracing::info!(transactional_id = id, "transactional producer ready");
                return Ok(Some(producer));
            }
            Err(e) => tracing::warn!(error = %e, "initializing transactions failed, will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A record for the dead-letter topic: the raw record, the reason and its origin.
pub(super) struct DeadLetter {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    reason: String,
}

impl DeadLetter {
    pub(super) fn of(msg: &OwnedMessage, reason: String) -> DeadLetter {
        DeadLetter {
            topic: msg.topic().to_owned(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().map(<[u8]>::to_vec),
            reason,
        }
    }
}

/// The dead-letter record of `d` (the headers of `kafka::dead_letter`).
fn dead_letter_record<'a>(topic: &'a str, d: &'a DeadLetter) -> FutureRecord<'a, [u8], [u8]> {
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "dlq.reason",
            value: Some(d.reason.as_str()),
        })
        .insert(Header {
            key: "dlq.topic",
            value: Some(d.topic.as_str()),
        })
        .insert(Header {
            key: "dlq.partition",
            value: Some(d.partition.to_string().as_str()),
        })
        .insert(Header {
            key: "dlq.offset",
            value: Some(d.offset.to_string().as_str()),
        });
    let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
    if let Some(k) = &d.key {
        record = record.key(k.as_slice());
    }
    if let Some(p) = &d.payload {
        record = record.payload(p.as_slice());
    }
    record
}

/// Where a transaction's records go, and its spend once committed.
pub(super) struct Sink {
    pub(super) enriched: String,
    pub(super) alerts: String,
    pub(super) dlq: String,
    /// Writer-schema fingerprint of the enriched records.
    pub(super) spent: SpentTx,
}

pub(super) enum Outcome {
    /// Committed (and handed over): the ids of the alerts it raised.
    Committed(Vec<String>),
    /// Aborted, or its outcome unknown (`fatal`: the producer must be
    /// replaced). Its partitions are read again.
    Failed { fatal: bool },
}

fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}

fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        code(e),
        Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
    )
}

/// Fatal for the producer: it must be replaced. `Canceled` is a call that
/// did not return (see [`blocking`]): the producer is stuck inside it.
fn is_fatal(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(t) => t.is_fatal(),
        KafkaError::Canceled => true,
        _ => code(e) == Some(RDKafkaErrorCode::Fatal),
    }
}

fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_retriable())
}

/// Hand a record to the producer now (so records keep the order of the
/// calls); a full queue is waited out (backpressure), up to [`CALL_TIMEOUT`].
async fn enqueue<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> KafkaResult<DeliveryFuture>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if Instant::now() < deadline =>
            {
                record = r;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Where a record landed, once acknowledged.
async fn delivered(f: DeliveryFuture) -> KafkaResult<(i32, i64)> {
    match f.await {
        Ok(Ok(d)) => Ok((d.partition, d.offset)),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}

/// The open transaction: the batches handed over since it began.
pub(super) struct Open {
    /// The consumer's group metadata as its first batch was complete
    /// (before the next read; see [`super`]).
    group: ConsumerGroupMetadata,
    started: tokio::time::Instant,
    /// The raw offset after each partition read into it.
    offsets: BTreeMap<Part, i64>,
    records: usize,
    /// Each enriched record's delivery, with its event if it cost something.
    enriched: Vec<(Option<AgentEvent>, DeliveryFuture)>,
    dead: Vec<(DeadLetter, DeliveryFuture)>,
    alerts: Vec<(String, DeliveryFuture)>,
    /// The first record that could not be handed over: the transaction aborts.
    failed: Option<KafkaError>,
}

impl Open {
    pub(super) fn begin(
        producer: &FutureProducer,
        group: ConsumerGroupMetadata,
    ) -> KafkaResult<Open> {
        producer.begin_transaction()?;
        Ok(Open {
            group,
            started: tokio::time::Instant::now(),
            offsets: BTreeMap::new(),
            records: 0,
            enriched: Vec::new(),
            dead: Vec::new(),
            alerts: Vec::new(),
            failed: None,
        })
    }

    /// The raw partitions read into it.
    pub(super) fn parts(&self) -> BTreeSet<Part> {
        self.offsets.keys().cloned().collect()
    }

    /// When it is to be committed.
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.started + COMMIT_INTERVAL
    }

    /// Whether to commit it now.
    pub(super) fn due(&self) -> bool {
        self.failed.is_some()
            || self.records >= COMMIT_RECORDS
            || tokio::time::Instant::now() >= self.deadline()
    }

    /// Hand a prepared batch over: its enriched records, dead letters and
    /// policy alerts, in order; its offsets go with the commit.
    pub(super) async fn add(
        &mut self,
        producer: &FutureProducer,
        sink: &Sink,
        batch: &[OwnedMessage],
        (records, events): (Vec<Record>, Vec<AgentEvent>),
        extra: Extra,
    ) {
        for (t, p, o) in kafka::next_offsets(batch) {
            let at = self.offsets.entry((t, p)).or_insert(o);
            *at = (*at).max(o);
        }
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self
            .hand_over(producer, sink, batch, records, events, extra)
            .await
        {
            self.failed = Some(e);
        }
    }

    async fn hand_over(
        &mut self,
        producer: &FutureProducer,
        sink: &Sink,
        batch: &[OwnedMessage],
        records: Vec<Record>,
        events: Vec<AgentEvent>,
        extra: Extra,
    ) -> KafkaResult<()> {
        for (i, reason) in extra.dead {
            let d = DeadLetter::of(&batch[i], reason);
            let delivery = enqueue(producer, dead_letter_record(&sink.dlq, &d)).await?;
            self.dead.push((d, delivery));
        }
        for a in &extra.alerts {
            #[allow(
                clippy::expect_used,
                reason = "an Alert is strings, numbers and a JSON value: it always serializes"
            )]
            let payload = serde_json::to_vec(a).expect("an alert serializes");
            let record = FutureRecord::to(&sink.alerts)
                .key(a.key())
                .payload(&payload);
            let delivery = enqueue(producer, record).await?;
            self.alerts.push((a.alert_id.clone(), delivery));
        }
        self.records += records.len();
        for ((key, payload), event) in records.iter().zip(events) {
            let fp = agentops_schemas::codec::header_value(payload);
            let headers = OwnedHeaders::new().insert(Header {
                key: agentops_schemas::codec::SCHEMA_HEADER,
                value: Some(&*fp),
            });
            let record = FutureRecord::to(&sink.enriched)
                .key(key)
                .payload(payload)
                .headers(headers);
            let delivery = enqueue(producer, record).await?;
            let spent = (event.cost_usd.unwrap_or(0.0) > 0.0).then_some(event);
            self.enriched.push((spent, delivery));
        }
        Ok(())
    }
}

/// Commit an open transaction with its offsets, once every record in it is
/// acknowledged; then hand its spend to the budget checker. Aborts it on
/// any failure.
pub(super) async fn commit(
    producer: FutureProducer,
    sink: Arc<Sink>,
    open: Open,
    shutdown: CancellationToken,
) -> Outcome {
    let Open {
        group,
        offsets,
        enriched,
        dead,
        alerts,
        failed,
        records,
        ..
    } = open;
    if let Some(e) = failed {
        return abort(&producer, &e, &shutdown).await;
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in &offsets {
        if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
            return abort(&producer, &e, &shutdown).await;
        }
    }
    let (events, deliveries): (Vec<_>, Vec<_>) = enriched.into_iter().unzip();
    let (dead, dead_deliveries): (Vec<_>, Vec<_>) = dead.into_iter().unzip();
    let (alerts, alert_deliveries): (Vec<_>, Vec<_>) = alerts.into_iter().unzip();
    // The offsets travel while the records are acknowledged.
    let (written, dead_sent, alerts_sent, offsets_sent) = tokio::join!(
        futures::future::join_all(deliveries.into_iter().map(delivered)),
        futures::future::join_all(dead_deliveries.into_iter().map(delivered)),
        futures::future::join_all(alert_deliveries.into_iter().map(delivered)),
        blocking(&producer, move |p| {
            p.send_offsets_to_transaction(&tpl, &group, CALL_TIMEOUT)
        }),
    );
    // The offsets' error first: a refused offset commit (the group moved
    // on) purges the records, whose errors only say so.
    let failed = offsets_sent
        .err()
        .or_else(|| written.iter().find_map(|r| r.as_ref().err().cloned()))
        .or_else(|| dead_sent.into_iter().find_map(Result::err))
        .or_else(|| alerts_sent.into_iter().find_map(Result::err));
    if let Some(e) = failed {
        return abort(&producer, &e, &shutdown).await;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match blocking(&producer, |p| p.commit_transaction(CALL_TIMEOUT)).await {
            Ok(()) => break,
            Err(e) if is_retriable(&e) && !shutdown.is_cancelled() => {
                tracing::warn!(error = %e, "committing the enrich transaction failed, will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return abort(&producer, &e, &shutdown).await,
        }
    }
    // Handed over at once, not when the next batch comes.
    transaction_ended("committed");
    telemetry::events_enriched(records);
    let spent: Vec<Spent> = events
        .into_iter()
        .zip(&written)
        .filter_map(|(e, at)| Some(Spent::of(&e?, at.as_ref().ok()?.0, at.as_ref().ok()?.1)))
        .collect();
    // Waits while the budget queue is full (backpressure; see `budget`).
    sink.spent.hand_over(spent, &shutdown).await;
    for d in dead {
        metrics::counter!("agentops_dead_letters_total").increment(1);
        tracing::warn!(
            topic = %d.topic,
            partition = d.partition,
            offset = d.offset,
            reason = %d.reason,
            "record dead-lettered"
        );
    }
    for id in &alerts {
        tracing::info!(alert_id = %id, "policy violated, alert emitted");
        telemetry::alert_emitted("policy");
    }
    Outcome::Committed(alerts)
}

/// Abort the open transaction after `cause`.
async fn abort(
    producer: &FutureProducer,
    cause: &KafkaError,
    shutdown: &CancellationToken,
) -> Outcome {
    transaction_ended("aborted");
    if is_fenced(cause) || is_fatal(cause) {
        // Fenced: a newer producer with this id, or the coordinator aborted
        // a transaction that outlived TXN_TIMEOUT (a broker restart): both
        // look the same to the client.
        tracing::warn!(error = %cause, "enrich transaction failed fatally, replacing the producer");
        return Outcome::Failed { fatal: true };
    }
    tracing::warn!(error = %cause, "enrich transaction failed, aborting it");
    let mut backoff = Duration::from_millis(100);
    for attempt in 0.. {
        match blocking(producer, |p| p.abort_transaction(CALL_TIMEOUT)).await {
            Ok(()) => return Outcome::Failed { fatal: false },
            Err(e) if is_retriable(&e) && attempt < 5 && !shutdown.is_cancelled() => {
                tracing::warn!(error = %e, "aborting the enrich transaction failed, will retry");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                // A new producer with the same id aborts it.
                tracing::warn!(error = %e, "aborting the enrich transaction failed, replacing the producer");
                break;
            }
        }
    }
    Outcome::Failed { fatal: true }
}

fn transaction_ended(outcome: &'static str) {
    metrics::counter!("agentops_processor_transactions_total", "outcome" => outcome).increment(1);
}
