//! events.raw → price → policies → events.enriched, at least once (this
//! module) or exactly once inside Kafka ([`txn`], `exactly_once`).
//!
//! Per batch: decode (undecodable → dead-letter), price, evaluate policies
//! (violations recorded and pauses applied before anything is produced),
//! raise policy alerts, produce the enriched records, then hand what was
//! spent (with the offsets written) to the budget checker. Offsets of the
//! raw topic are stored only after all of that is durable, in batch order.
//! A batch's acknowledgements are awaited while the next batch is read and
//! prepared (one batch in flight): a produce that fails and is retried can
//! land after the next batch's records, which no consumer relies on (the
//! projections fold any order; a cost correction is only ever written after
//! its event was acknowledged).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentops_governance::{PolicyAction, PolicyKind};
use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::{AgentEvent, Codec};
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use sqlx::PgPool;

use crate::budget::{Spent, SpentTx};
use crate::governance::Governance;
use crate::policy::{self, RunCosts, Violation};
use crate::pricing::{Priced, Prices};
use crate::{alert, telemetry, Config};

pub(crate) mod txn;

/// What the stage needs besides the batch.
pub(crate) struct Stage {
    pub(crate) config: Arc<Config>,
    pub(crate) prices: Prices,
    pub(crate) producer: FutureProducer,
    pub(crate) pool: PgPool,
    pub(crate) governance: Governance,
    pub(crate) spent: SpentTx,
    run_costs: RunCosts,
    alerted: HashSet<String>,
    codec: Codec,
}

impl Stage {
    pub(crate) fn new(
        config: Arc<Config>,
        prices: Prices,
        producer: FutureProducer,
        pool: PgPool,
        governance: Governance,
        spent: SpentTx,
    ) -> Stage {
        Stage {
            config,
            prices,
            producer,
            pool,
            governance,
            spent,
            run_costs: RunCosts::default(),
            alerted: HashSet::new(),
            codec: Codec::current(),
        }
    }
}

pub(crate) async fn run(
    mut stage: Stage,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let config = stage.config.clone();
    let consumer: StreamConsumer<kafka::LagContext> = kafka::consumer(
        &config.kafka,
        &config.group,
        kafka::LagContext::new(&config.group),
    )?;
    consumer.subscribe(&[&config.kafka.topic_raw])?;
    let linger = Duration::from_millis(config.batch_linger_ms);
    tracing::info!(topic = %config.kafka.topic_raw, group = %config.group, "enrich stage consuming");
    let mut assigned = None;
    // The batch being acknowledged: its produce task and its raw offsets.
    let mut inflight: Option<(tokio::task::JoinHandle<bool>, Offsets)> = None;
    while let Some(batch) = kafka::next_batch(&consumer, config.batch_max, linger, &shutdown).await
    {
        // Run costs are only known for runs whose partitions stayed here.
        let now_assigned = assignment_of(&consumer);
        if now_assigned != assigned {
            stage.run_costs = RunCosts::default();
            assigned = now_assigned;
        }
        let Some((records, events)) = prepare(&mut stage, &batch, &shutdown, None).await else {
            break; // shutdown before the batch was durable: do not store its offsets
        };
        // Batch N's acknowledgements are awaited while batch N+1 is read and
        // prepared; offsets are still stored in order, each only once its
        // batch is durable.
        if let Some((task, offsets)) = inflight.take() {
            if !task.await.unwrap_or(false) {
                break;
            }
            kafka::store_offsets(&consumer, &offsets);
        }
        let out = Output {
            producer: stage.producer.clone(),
            topic: config.kafka.topic_enriched.clone(),
            spent: stage.spent.clone(),
        };
        let task = tokio::spawn(produce(out, records, events, shutdown.clone()));
        inflight = Some((task, kafka::next_offsets(&batch)));
    }
    if let Some((task, offsets)) = inflight.take() {
        if task.await.unwrap_or(false) {
            kafka::store_offsets(&consumer, &offsets);
        }
    }
    // Commit what was stored so a successor starts where we stopped.
    // A synchronous commit waits for the broker: off the async workers.
    let commit = tokio::task::spawn_blocking(move || {
        consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
    });
    if let Ok(Err(e)) = commit.await {
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}

/// The partitions assigned to `consumer`, sorted (`None` if it cannot tell).
fn assignment_of<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
) -> Option<Vec<(String, i32)>> {
    consumer.assignment().ok().map(|a| {
        let mut parts: Vec<(String, i32)> = a.to_topic_map().into_keys().collect();
        parts.sort();
        parts
    })
}

/// Retry `op` until it succeeds (transient failures are never skipped);
/// `None` if shutdown came first.
async fn retrying<T, E: std::fmt::Display, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => tracing::warn!(error = %e, "{what} failed, will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Like [`retrying`] for a database write, except that a permanent error
/// (the data itself, [`agentops_runtime::db::is_permanent`]) is returned
/// instead of retried forever. `None` on shutdown.
async fn retrying_transient<F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut op: F,
) -> Option<Result<(), sqlx::Error>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(()) => return Some(Ok(())),
            Err(e) if agentops_runtime::db::is_permanent(&e) => return Some(Err(e)),
            Err(e) => tracing::warn!(error = %e, "{what} failed, will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Record a batch's policy violations (and the pauses they ask for). A
/// batch the database refuses for its data is recorded one violation at a
/// time, and one it still refuses is logged and counted
/// (`agentops_processor_refused_violations_total`) rather than retried
/// forever, which would stop the partition for every org on it; its event
/// goes on. False on shutdown.
async fn record_violations(
    pool: &PgPool,
    found: &[(Violation, AgentEvent)],
    shutdown: &CancellationToken,
) -> bool {
    match retrying_transient("recording policy violations", shutdown, || {
        policy::record(pool, found)
    })
    .await
    {
        None => return false,
        Some(Ok(())) => return true,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the database refuses a batch of policy violations; recording them one by one")
        }
    }
    for one in found {
        match retrying_transient("recording a policy violation", shutdown, || {
            policy::record(pool, std::slice::from_ref(one))
        })
        .await
        {
            None => return false,
            Some(Ok(())) => {}
            Some(Err(e)) => {
                metrics::counter!("agentops_processor_refused_violations_total").increment(1);
                tracing::warn!(
                    error = %e,
                    event_id = %one.1.event_id,
                    org_id = %one.1.org_id,
                    policy = %one.0.policy.id,
                    "policy violation refused by the database, not recorded"
                );
            }
        }
    }
    true
}

/// Where a prepared batch goes.
struct Output {
    producer: FutureProducer,
    topic: String,
    spent: SpentTx,
}

/// An encoded record: (partition key, Avro value).
type Record = (String, Vec<u8>);

/// Next offsets to store: (topic, partition, offset).
type Offsets = Vec<(String, i32, i64)>;

/// What a batch sends besides its enriched records, when those go out in
/// the batch's transaction ([`txn`]) instead of straight away.
#[derive(Default)]
struct Extra {
    /// (index in the batch, reason): records that cannot be decoded or
    /// re-encoded, for the dead-letter topic.
    dead: Vec<(usize, String)>,
    /// Policy alerts this instance has not raised yet.
    alerts: Vec<alert::Alert>,
}

/// Decode, price, apply policies and encode one batch (dead-lettering what
/// cannot be decoded or encoded); `None` on shutdown. With `extra`, dead
/// letters and policy alerts are collected there instead of produced.
async fn prepare(
    stage: &mut Stage,
    batch: &[OwnedMessage],
    shutdown: &CancellationToken,
    mut extra: Option<&mut Extra>,
) -> Option<(Vec<Record>, Vec<AgentEvent>)> {
    let config = stage.config.clone();
    let producer = stage.producer.clone();
    let mut events: Vec<AgentEvent> = Vec::with_capacity(batch.len());
    // The record each decoded event came from (for the dead letter).
    let mut origin: Vec<usize> = Vec::with_capacity(batch.len());
    // Per org: spend (priced or client cost) and events left unpriced.
    let mut by_org: std::collections::HashMap<String, (f64, u64)> = Default::default();
    let prices = stage.prices.current();
    for (i, msg) in batch.iter().enumerate() {
        let decoded = match msg.payload() {
            None => Err("empty record".to_owned()),
            Some(p) => stage.codec.decode(p).map_err(|e| e.to_string()),
        };
        let mut event = match decoded {
            Ok(e) => e,
            Err(reason) => {
                if let Some(x) = extra.as_deref_mut() {
                    x.dead.push((i, reason));
                } else if !kafka::dead_letter(
                    &producer,
                    &config.kafka.topic_dlq,
                    msg,
                    &reason,
                    shutdown,
                )
                .await
                {
                    return None;
                }
                continue;
            }
        };
        let unknown = prices.enrich(&mut event) == Priced::UnknownModel;
        if unknown || event.cost_usd.is_some() {
            let org = by_org.entry(event.org_id.clone()).or_default();
            org.0 += event.cost_usd.unwrap_or(0.0);
            org.1 += u64::from(unknown);
        }
        // Only the policy stage sets this attribute.
        event.attributes.remove(policy::FLAG_ATTRIBUTE);
        events.push(event);
        origin.push(i);
    }
    for (org, (spend, unpriced)) in &by_org {
        telemetry::spend(org, *spend, *unpriced);
    }
    if !apply_policies(stage, &mut events, shutdown, extra.as_deref_mut()).await {
        return None;
    }

    let mut out = Vec::with_capacity(events.len());
    let mut kept = Vec::with_capacity(events.len());
    for (event, i) in events.into_iter().zip(origin) {
        match stage.codec.encode(&event) {
            Ok(bytes) => {
                out.push((event.partition_key(), bytes));
                kept.push(event);
            }
            Err(e) => {
                let reason = format!("cannot re-encode: {e}");
                if let Some(x) = extra.as_deref_mut() {
                    x.dead.push((i, reason));
                } else if !kafka::dead_letter(
                    &producer,
                    &config.kafka.topic_dlq,
                    &batch[i],
                    &reason,
                    shutdown,
                )
                .await
                {
                    return None;
                }
            }
        }
    }
    Some((out, kept))
}

/// Produce a prepared batch, retrying whatever failed until it is
/// acknowledged (never skipped), then hand what was spent to the budget
/// checker (waiting while its bounded queue is full: backpressure); true
/// once all of it is durable, false on shutdown.
async fn produce(
    o: Output,
    out: Vec<Record>,
    kept: Vec<AgentEvent>,
    shutdown: CancellationToken,
) -> bool {
    let producer = &o.producer;
    let mut written: Vec<Option<(i32, i64)>> = vec![None; out.len()];
    let mut pending: Vec<usize> = (0..out.len()).collect();
    let mut backoff = Duration::from_millis(100);
    while !pending.is_empty() {
        let results = kafka::send_records(
            producer,
            &o.topic,
            pending.iter().map(|&i| &out[i]),
            Duration::from_secs(30),
        )
        .await;
        pending = pending
            .into_iter()
            .zip(results)
            .filter_map(|(i, r)| match r {
                Ok(at) => {
                    written[i] = Some(at);
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "produce to enriched topic failed, will retry");
                    Some(i)
                }
            })
            .collect();
        if !pending.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    telemetry::events_enriched(out.len());
    let spent: Vec<Spent> = kept
        .iter()
        .zip(written)
        .filter(|(e, _)| e.cost_usd.unwrap_or(0.0) > 0.0)
        .filter_map(|(e, at)| at.map(|(p, o)| Spent::of(e, p, o)))
        .collect();
    o.spent.hand_over(spent, &shutdown).await;
    true
}

/// Evaluate the org's policies on each event; record violations, apply
/// pauses, flag the events and raise alerts (with `extra`: collect them
/// there). False on shutdown.
async fn apply_policies(
    stage: &mut Stage,
    events: &mut [AgentEvent],
    shutdown: &CancellationToken,
    extra: Option<&mut Extra>,
) -> bool {
    let snap = stage.governance.current();
    if !events.iter().any(|e| snap.policies.contains_key(&e.org_id)) {
        return true;
    }
    let needs_run_cost = |e: &AgentEvent| {
        snap.policies
            .get(&e.org_id)
            .is_some_and(|ps| ps.iter().any(|p| p.kind() == PolicyKind::MaxCostPerRun))
    };
    let costed: Vec<&AgentEvent> = events.iter().filter(|e| needs_run_cost(e)).collect();
    if !costed.is_empty() {
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = stage.run_costs.seed(&stage.pool, &costed).await {
            tracing::warn!(error = %e, "reading run costs failed, will retry");
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    let mut found: Vec<(Violation, AgentEvent)> = Vec::new();
    for e in events.iter_mut() {
        let Some(policies) = snap.policies.get(&e.org_id) else {
            continue;
        };
        let run_cost = if needs_run_cost(e) {
            stage.run_costs.add(e)
        } else {
            None
        };
        let violations = policy::evaluate(policies, e, run_cost);
        if violations.is_empty() {
            continue;
        }
        let names: Vec<&str> = violations.iter().map(|v| v.policy.name.as_str()).collect();
        e.attributes
            .insert(policy::FLAG_ATTRIBUTE.to_owned(), names.join(","));
        for v in violations {
            found.push((v, e.clone()));
        }
    }
    if found.is_empty() {
        return true;
    }
    if !record_violations(&stage.pool, &found, shutdown).await {
        return false;
    }
    for (v, _) in &found {
        telemetry::policy_violations(v.policy.action.as_str(), 1);
    }
    let mut alerts: Vec<alert::Alert> = Vec::new();
    for (v, e) in &found {
        if v.policy.action == PolicyAction::Flag {
            continue;
        }
        let a = policy::violation_alert(v, e, v.policy.action == PolicyAction::Pause);
        if !stage.alerted.contains(&a.alert_id) && !alerts.iter().any(|x| x.alert_id == a.alert_id)
        {
            alerts.push(a);
        }
    }
    if let Some(x) = extra {
        // Raised (and remembered) once the batch's transaction commits.
        x.alerts = alerts;
    } else if !alerts.is_empty() {
        // All of the batch's alerts in flight at once (a retry re-sends them
        // all; the notifier records each id once).
        let topic = stage.config.kafka.topic_alerts.clone();
        let producer = stage.producer.clone();
        if retrying("producing policy alerts", shutdown, || {
            alert::produce_all(&producer, &topic, &alerts)
        })
        .await
        .is_none()
        {
            return false;
        }
        for a in alerts {
            tracing::info!(alert_id = %a.alert_id, "policy violated, alert emitted");
            telemetry::alert_emitted("policy");
            stage.alerted.insert(a.alert_id);
        }
    }
    if stage.alerted.len() > 100_000 {
        stage.alerted.clear();
    }
    true
}
