//! The transactional enrich stage (`AGENTOPS_EXACTLY_ONCE=true`): raw
//! events keep arriving while processors are SIGKILLed and restarted, join
//! and leave; a `read_committed` reader of the enriched topic then finds
//! every raw event exactly once (nothing lost, nothing twice), and every
//! undecodable raw record exactly once on the dead-letter topic.
//!
//! The raw records are produced straight to the stack's raw topic (what the
//! gateway writes), so each kill lands amid transactions, not amid HTTP.
//! `AGENTOPS_TEST_EXACTLY_ONCE=false` runs the same tests against the
//! at-least-once stage, which fails them with duplicates.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use agentops_e2e::events::enriched_runs;
use agentops_e2e::kafka::group_owners;
use agentops_e2e::{kafka_brokers, Component, Stack, StackOptions};
use agentops_runtime::config::KafkaConfig;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::Codec;
use anyhow::{ensure, Context, Result};
use chrono::{Duration as Span, Utc};
use rand::Rng;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn exactly_once() -> String {
    std::env::var("AGENTOPS_TEST_EXACTLY_ONCE").unwrap_or_else(|_| "true".into())
}

/// Processors only (the raw topic is fed directly; the enriched topic is
/// read directly).
fn processors_only(partitions: i32, processors: usize) -> StackOptions {
    StackOptions {
        processors,
        partitions: Some(partitions),
        env: vec![
            ("AGENTOPS_EXACTLY_ONCE".into(), exactly_once()),
            ("AGENTOPS_BATCH_MAX".into(), "200".into()),
        ],
        skip: vec![
            Component::Gateway,
            Component::Projections,
            Component::QueryApi,
        ],
        ..Default::default()
    }
}

/// What the feed wrote to the raw topic.
struct Sent {
    /// Event ids of the decodable records.
    ids: Vec<String>,
    /// Keys of the undecodable (empty) records.
    poison: Vec<String>,
}

/// A task writing 100 raw events (25 runs over 16 agents; and every tenth
/// time one undecodable record) every 50 ms to the stack's raw topic until
/// stopped.
struct Feed {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<Sent>>,
}

impl Feed {
    fn start(stack: &Stack) -> Result<Feed> {
        let producer = agentops_runtime::kafka::stage_producer(&KafkaConfig {
            brokers: kafka_brokers(),
            ..Default::default()
        })?;
        let (topic, org) = (stack.topic("raw"), stack.org_id.clone());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let codec = Codec::current();
            let mut sent = Sent {
                ids: Vec::new(),
                poison: Vec::new(),
            };
            let mut round = 0;
            while !token.is_cancelled() {
                let mut records = Vec::new();
                let mut ids = Vec::new();
                for e in enriched_runs(
                    &org,
                    &format!("r{round}"),
                    25,
                    Utc::now() - Span::minutes(5),
                    Span::milliseconds(100),
                ) {
                    // 16 agents: every partition carries events.
                    let mut e = e;
                    e.agent_id = format!("agent-{}", (round + ids.len() / 4) % 16);
                    ids.push(e.event_id.clone());
                    records.push((e.partition_key(), codec.encode(&e)?));
                }
                let poison = (round % 10 == 3).then(|| format!("poison-{round}"));
                if let Some(key) = &poison {
                    records.push((key.clone(), Vec::new()));
                }
                for r in agentops_runtime::kafka::send_records(
                    &producer,
                    &topic,
                    &records,
                    Duration::from_secs(30),
                )
                .await
                {
                    r.context("producing raw records")?;
                }
                sent.ids.extend(ids);
                sent.poison.extend(poison);
                round += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(sent)
        });
        Ok(Feed { stop, task })
    }

    async fn stop(self) -> Result<Sent> {
        self.stop.cancel();
        self.task.await?
    }
}

/// Sum of the enriched topic's high watermarks: grows while the processors
/// write (committed or not).
async fn enriched_end(stack: &Stack) -> Result<i64> {
    let topic = stack.topic("enriched");
    tokio::task::spawn_blocking(move || -> Result<i64> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .create()?;
        let md = c.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut sum = 0;
        for t in md.topics() {
            for p in t.partitions() {
                sum += c
                    .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))?
                    .1;
            }
        }
        Ok(sum)
    })
    .await?
}

/// Wait until the processors wrote more to the enriched topic than `since`.
async fn progress(stack: &Stack, since: i64) -> Result<i64> {
    stack
        .eventually(
            Duration::from_secs(120),
            "the processors make progress",
            || async {
                let n = enriched_end(stack).await?;
                Ok((n > since).then_some(n))
            },
        )
        .await
}

/// Read `topic` from the start as a `read_committed` consumer: how often
/// each `id_of(record)` appears. Reads until every one of `want` was seen
/// (or 5 minutes passed), then 3 s more for anything late.
fn read_committed_counts(
    topic: &str,
    want: &[String],
    id_of: impl Fn(&rdkafka::message::BorrowedMessage<'_>) -> Option<String>,
) -> Result<HashMap<String, usize>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set(
            "group.id",
            format!("reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    c.assign(&tpl)?;
    let wanted: HashSet<&str> = want.iter().map(String::as_str).collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut settle: Option<Instant> = None;
    loop {
        if settle.is_none() && seen == wanted.len() {
            settle = Some(Instant::now() + Duration::from_secs(3));
        }
        if settle.is_some_and(|t| Instant::now() > t) || Instant::now() > deadline {
            return Ok(counts);
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if let Some(id) = id_of(&m) {
                    let is_wanted = wanted.contains(id.as_str());
                    let n = counts.entry(id).or_default();
                    *n += 1;
                    if *n == 1 && is_wanted {
                        seen += 1;
                    }
                }
            }
            Some(Err(e)) => anyhow::bail!("reading {topic}: {e}"),
            None => {}
        }
    }
}

/// Every id of `want` exactly once in `counts`, and nothing else.
fn exactly_once_each(what: &str, want: &[String], counts: &HashMap<String, usize>) -> Result<()> {
    let missing: Vec<&String> = want.iter().filter(|id| !counts.contains_key(*id)).collect();
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, &n)| n > 1).collect();
    let extra = counts.len() + missing.len() - want.len();
    eprintln!(
        "{what}: {} sent, {} missing, {} more than once ({} copies in excess), {extra} unknown",
        want.len(),
        missing.len(),
        twice.len(),
        twice.iter().map(|(_, &n)| n - 1).sum::<usize>()
    );
    ensure!(
        missing.is_empty(),
        "{what}: {} of {} lost, e.g. {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(3)]
    );
    ensure!(
        twice.is_empty(),
        "{what}: {} written more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
    ensure!(extra == 0, "{what}: {extra} records nobody sent");
    Ok(())
}

/// Both topics, read committed: each event once, each poison record once.
async fn assert_exactly_once(stack: &Stack, sent: Sent) -> Result<()> {
    let (enriched, dlq) = (stack.topic("enriched"), stack.topic("dlq"));
    let ids = sent.ids;
    let counts = tokio::task::spawn_blocking({
        let ids = ids.clone();
        move || {
            let codec = Codec::current();
            read_committed_counts(&enriched, &ids, |m| {
                Some(codec.decode(m.payload()?).ok()?.event_id)
            })
        }
    })
    .await??;
    exactly_once_each("enriched events", &ids, &counts)?;
    let poison = sent.poison;
    let counts = tokio::task::spawn_blocking({
        let poison = poison.clone();
        move || {
            read_committed_counts(&dlq, &poison, |m| {
                Some(String::from_utf8_lossy(m.key()?).into_owned())
            })
        }
    })
    .await??;
    exactly_once_each("dead letters", &poison, &counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_sigkilled_10_times_mid_stream_writes_each_event_exactly_once() -> Result<()> {
    let mut stack = Stack::start("txnenrich", processors_only(4, 1)).await?;
    let feed = Feed::start(&stack)?;
    let mut end = 0;
    for kill in 0..10 {
        // Each kill at a random point once the restarted instance writes
        // again: mid-batch, mid-transaction, between produce and commit.
        end = progress(&stack, end).await?;
        let wait = rand::rng().random_range(0..800);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        stack.kill(Component::Processors, 0)?;
        eprintln!("kill {kill}: enriched topic end {end}");
        stack.restart(Component::Processors, 0).await?;
    }
    progress(&stack, end).await?;
    let sent = feed.stop().await?;
    ensure!(
        sent.ids.len() > 5_000,
        "only {} events sent",
        sent.ids.len()
    );
    assert_exactly_once(&stack, sent).await
}

/// Wait until `members` live instances share every raw partition, each
/// owned once (as the broker's group coordinator reports it).
async fn owned_by(stack: &Stack, members: usize) -> Result<()> {
    let group = stack.group_of(Component::Processors).context("group")?;
    let raw = stack.topic("raw");
    stack
        .eventually(
            Duration::from_secs(90),
            &format!("{members} processors own the raw partitions"),
            || async {
                let owners = group_owners(&kafka_brokers(), &group)?;
                let mut per: BTreeMap<i32, Vec<String>> = BTreeMap::new();
                for (t, p, m) in owners {
                    if t == raw {
                        per.entry(p).or_default().extend(m);
                    }
                }
                let distinct: BTreeSet<&String> = per.values().flatten().collect();
                let ok = per.len() == REBALANCE_PARTITIONS as usize
                    && per.values().all(|m| m.len() == 1)
                    && distinct.len() == members;
                Ok(ok.then_some(()))
            },
        )
        .await
}

const REBALANCE_PARTITIONS: i32 = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_instances_join_die_and_leave_mid_stream_writes_each_event_exactly_once(
) -> Result<()> {
    let mut stack = Stack::start("txnrebal", processors_only(REBALANCE_PARTITIONS, 2)).await?;
    owned_by(&stack, 2).await?;
    let feed = Feed::start(&stack)?;
    let mut end = progress(&stack, 0).await?;
    // A third instance joins: partitions move off the first two
    // (cooperative rebalance: revocations amid their transactions).
    let third = stack.add_instance(Component::Processors).await?;
    owned_by(&stack, 3).await?;
    end = progress(&stack, end).await?;
    // One dies and comes back (its static membership keeps its partitions).
    stack.kill(Component::Processors, 0)?;
    stack.restart(Component::Processors, 0).await?;
    end = progress(&stack, end).await?;
    owned_by(&stack, 3).await?;
    // One stops for good: its partitions move once its session expires.
    stack.terminate(Component::Processors, 1)?;
    owned_by(&stack, 2).await?;
    end = progress(&stack, end).await?;
    // Another joins, then the third dies for good.
    stack.add_instance(Component::Processors).await?;
    owned_by(&stack, 3).await?;
    end = progress(&stack, end).await?;
    stack.kill(Component::Processors, third)?;
    owned_by(&stack, 2).await?;
    progress(&stack, end).await?;
    let sent = feed.stop().await?;
    assert_exactly_once(&stack, sent).await
}
