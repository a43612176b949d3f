//! One transaction per batch. Plain mode: the new events, the batch's cost
//! corrections and its offsets (the deriver, [`crate::derive`], folds them
//! into everything derived later). TimescaleDB mode: the new events, runs,
//! agents, the hierarchy, the per-tag levels, the corrections and the
//! offsets (its continuous aggregates follow `events`).

use std::collections::HashSet;
use std::sync::OnceLock;

use agentops_runtime::copy::CopyBinary;
use agentops_runtime::storage::{self, ColumnKind, Mode, LEVELS, PROJECTION_LOCK};
use agentops_schemas::{correction, histogram, AgentEvent, EventType};
use chrono::{DateTime, NaiveDate, Utc};
use rustc_hash::FxHashMap;
use sqlx::{Connection, PgConnection};

use crate::derive::{Derived, Handoff};
use crate::rows::{self, ts};

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events that were new.
    pub inserted: usize,
    /// Events already present (client or producer retries, replays).
    pub duplicates: usize,
    /// Events whose cost a cost correction changed (corrections are not
    /// events). TimescaleDB mode; in plain mode the deriver applies them
    /// ([`Derived::corrected`]).
    pub corrected: usize,
}

const INSERT_EVENTS: &str = "
INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status, latency_ms,
    lat_bucket, provider, model, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, cost_usd, cost_source, tool_name, error_type,
    error_message, trace_id, span_id, attributes, ingested_at, project_id, machine_id,
    workspace_id, session_id)
SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::int8[], $10::int2[], $11::text[], $12::text[], $13::int8[],
    $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::float8[], $19::text[], $20::text[],
    $21::text[], $22::text[], $23::text[], $24::text[], $25::jsonb[], $26::timestamptz[],
    $27::text[], $28::text[], $29::text[], $30::text[])
ON CONFLICT (event_id, org_id, ts) DO NOTHING";

const UPSERT_OFFSETS: &str = "
INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at)
SELECT $1, topic, partition, next_offset, now()
FROM UNNEST($2::text[], $3::int4[], $4::int8[]) AS t(topic, partition, next_offset)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
    next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
    updated_at = now()";

/// Both modes: the new events' keys come back (in TimescaleDB mode the
/// continuous aggregates follow `events` on their own).
fn insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("{INSERT_EVENTS} RETURNING event_id, org_id, ts"))
}

/// Plain mode: the batch is copied in binary straight into `events`; the
/// new ones are counted, not returned (the deriver reads them, see
/// [`crate::derive`]). A batch holding an event already stored (a client's
/// retry, a replay) fails that COPY on the key: it is then copied into the
/// session's `events_in` (not logged, emptied at commit) and inserted from
/// there in one statement that skips the stored ones.
async fn copy_new_events(
    tx: &mut PgConnection,
    batch: &[&AgentEvent],
) -> Result<usize, sqlx::Error> {
    let payload = events_copy_payload(batch);
    savepoint(tx, "copy_events").await?;
    let copied = copy_into(tx, "events", &payload).await;
    if unless_stored(tx, "copy_events", copied).await?.is_some() {
        return Ok(batch.len());
    }
    static INSERT: OnceLock<String> = OnceLock::new();
    let insert = INSERT.get_or_init(|| {
        format!(
            "WITH ins AS (
                INSERT INTO events ({EVENTS_COPY_COLUMNS})
                SELECT {EVENTS_COPY_COLUMNS} FROM events_in
                ON CONFLICT (event_id, org_id, ts) DO NOTHING RETURNING 1)
             SELECT count(*)::int8 FROM ins"
        )
    });
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('pg_temp.events_in') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        sqlx::raw_sql(
            "CREATE TEMP TABLE events_in (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await?;
    }
    copy_into(tx, "events_in", &payload).await?;
    let (n,): (i64,) = sqlx::query_as(insert).fetch_one(&mut *tx).await?;
    Ok(n as usize)
}

/// COPY `payload` ([`events_copy_payload`]) into `table`.
async fn copy_into(tx: &mut PgConnection, table: &str, payload: &[u8]) -> Result<(), sqlx::Error> {
    copy_in(
        tx,
        &format!("COPY {table} ({EVENTS_COPY_COLUMNS}) FROM STDIN (FORMAT binary)"),
        payload,
    )
    .await
}

/// Run `copy` (a `COPY ... FROM STDIN (FORMAT binary)`) with `payload`.
pub(crate) async fn copy_in(
    tx: &mut PgConnection,
    copy: &str,
    payload: &[u8],
) -> Result<(), sqlx::Error> {
    let mut copy = tx.copy_in_raw(copy).await?;
    if let Err(e) = copy.send(payload).await {
        // The connection is left usable only once the COPY is ended.
        let _ = copy.abort(e.to_string()).await;
        return Err(e);
    }
    copy.finish().await.map(|_| ())
}

/// Open savepoint `name` before writing rows thought new.
pub(crate) async fn savepoint(tx: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SAVEPOINT {name}"))
        .execute(&mut *tx)
        .await
        .map(|_| ())
}

/// End savepoint `name` after `written`: kept when it succeeded; rolled
/// back when it failed on a unique key (a row thought new was stored:
/// `None`, the caller takes its path that merges with stored rows); any
/// other error is returned.
pub(crate) async fn unless_stored<T>(
    tx: &mut PgConnection,
    name: &str,
    written: Result<T, sqlx::Error>,
) -> Result<Option<T>, sqlx::Error> {
    let (end, kept) = match written {
        Ok(v) => ("RELEASE SAVEPOINT", Some(v)),
        Err(e) if is_unique_violation(&e) => {
            tracing::debug!(error = %e, savepoint = name, "stored rows among the new ones");
            ("ROLLBACK TO SAVEPOINT", None)
        }
        Err(e) => return Err(e),
    };
    sqlx::query(&format!("{end} {name}"))
        .execute(&mut *tx)
        .await?;
    Ok(kept)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// [`insert_sql`] that also folds the new events carrying one of the tag
/// keys `$31` into the per-tag levels (both modes), in the same statement.
fn insert_with_tags_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut sql = format!("WITH ins AS ({INSERT_EVENTS} RETURNING *)");
        for (i, l) in storage::TAG_LEVELS.iter().enumerate() {
            sql.push_str(&format!(
                ",\nt{i} AS ({})",
                storage::tag_level_sql(l, "ins", "$31::text[]", "")
            ));
        }
        sql.push_str("\nSELECT event_id, org_id, ts FROM ins");
        sql
    })
}

/// Plain mode: a session's table of a batch's deltas, one row per level
/// and key ([`Deltas`]), copied in binary and emptied at commit. Not logged,
/// never seen by another session.
fn deltas_ddl() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<String> = storage::aggregates()
            .iter()
            .map(|c| {
                let ty = if c.kind == ColumnKind::Float {
                    "float8"
                } else {
                    "int8"
                };
                format!("{} {ty}", c.name)
            })
            .collect();
        let dims: Vec<String> = storage::DIMENSIONS
            .iter()
            .map(|d| format!("{d} text"))
            .collect();
        format!(
            "CREATE TEMP TABLE agg_deltas (level int2, org_id text, bucket timestamptz, {}, {})
             ON COMMIT DELETE ROWS",
            dims.join(", "),
            cols.join(", ")
        )
    })
}

/// Plain mode: one statement adds the copied deltas to every aggregate
/// level: one upsert per touched row, the same columns the continuous
/// aggregates define. Not sorted: only the deriver writes the levels in
/// this mode, one at a time (`DERIVE_LOCK`), so no two transactions lock
/// their rows in different orders (and the copy holds each level's rows in
/// key order anyway; sorting them cost a sort of rows a hundred columns
/// wide, spilled to disk at the minute level).
fn levels_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = storage::aggregates();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        let updates: Vec<String> = cols.iter().map(|c| c.merge_sql()).collect();
        let mut parts = Vec::new();
        for (i, l) in LEVELS.iter().enumerate() {
            let dims = l.dims_list("");
            parts.push(format!(
                "a{i} AS (
    INSERT INTO {name} AS a (org_id, bucket{dims}, {names})
    SELECT org_id, bucket{dims}, {names} FROM agg_deltas WHERE level = {i}
    ON CONFLICT ON CONSTRAINT {name}_key DO UPDATE SET {updates})",
                name = l.name,
                names = names.join(", "),
                updates = updates.join(", "),
            ));
        }
        // The per-tag levels: their key and value ride in the first two
        // dimension columns of `agg_deltas`.
        for (j, l) in storage::TAG_LEVELS.iter().enumerate() {
            let i = LEVELS.len() + j;
            parts.push(format!(
                "a{i} AS (
    INSERT INTO {name} AS a (org_id, bucket, tag_key, tag_value, {names})
    SELECT org_id, bucket, {d0}, {d1}, {names} FROM agg_deltas WHERE level = {i}
    ON CONFLICT ON CONSTRAINT {name}_key DO UPDATE SET {updates})",
                name = l.name,
                d0 = storage::DIMENSIONS[0],
                d1 = storage::DIMENSIONS[1],
                names = names.join(", "),
                updates = updates.join(", "),
            ));
        }
        format!("WITH {}\nSELECT 1", parts.join(",\n"))
    })
}

/// Width of a level's buckets in microseconds (`date_bin` from 2000-01-01,
/// a midnight: the same as from the epoch).
fn width_micros(width: &str) -> i64 {
    match width {
        "1 minute" => 60_000_000,
        "1 hour" => 3_600_000_000,
        _ => 86_400_000_000,
    }
}

/// A level row's key: org, bucket start (µs), the level's dimensions in
/// [`storage::DIMENSIONS`] order (`None` where the level has none or the
/// event lacks it).
type RowKey<'a> = (&'a str, i64, [Option<&'a str>; 4]);

/// What one level row gains: one value per aggregate column (counts; the
/// float column's slot unused) and the cost.
type Gain = (Vec<i64>, f64);

/// A [`RowKey`] with its strings numbered ([`Interner`]).
type IdKey = (u32, i64, [Option<u32>; 4]);

/// Numbers for the strings of a fold's keys.
#[derive(Default)]
struct Interner<'a> {
    ids: FxHashMap<&'a str, u32>,
    strings: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        let next = self.strings.len() as u32;
        *self.ids.entry(s).or_insert_with(|| {
            self.strings.push(s);
            next
        })
    }

    /// The strings by number, and each number's place in the strings' order.
    fn finish(self) -> (Vec<&'a str>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.strings.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.strings[i as usize]);
        let mut rank = vec![0; order.len()];
        for (place, &i) in order.iter().enumerate() {
            rank[i as usize] = place as u32;
        }
        (self.strings, rank)
    }
}

/// What [`Deltas::of`] needs of the columns and levels, worked out once.
struct FoldShape {
    /// The columns that are not sparse (the histogram's are one per bucket).
    dense: Vec<usize>,
    /// The column of each latency bucket.
    latency: Vec<usize>,
    /// Per level of [`LEVELS`]: which of [`storage::DIMENSIONS`] it keys on,
    /// and its bucket width (µs).
    levels: Vec<([bool; 4], i64)>,
    /// The per-tag levels' bucket widths.
    tag_widths: Vec<i64>,
}

impl FoldShape {
    fn get() -> &'static Self {
        static SHAPE: OnceLock<FoldShape> = OnceLock::new();
        SHAPE.get_or_init(|| {
            let cols = storage::aggregates();
            let mut latency = vec![usize::MAX; histogram::BUCKETS];
            let mut dense = Vec::new();
            for (i, c) in cols.iter().enumerate() {
                match c.measure {
                    storage::Measure::Latency(b) => latency[b] = i,
                    storage::Measure::Cost => {}
                    _ => dense.push(i),
                }
            }
            assert!(latency.iter().all(|&i| i != usize::MAX));
            Self {
                dense,
                latency,
                levels: LEVELS
                    .iter()
                    .map(|l| {
                        let mask =
                            std::array::from_fn(|i| l.dims.contains(&storage::DIMENSIONS[i]));
                        (mask, width_micros(l.width))
                    })
                    .collect(),
                tag_widths: storage::TAG_LEVELS
                    .iter()
                    .map(|l| width_micros(l.width))
                    .collect(),
            }
        })
    }
}

/// A batch's new events folded per level and key: what each touched row of
/// each level gains.
struct Deltas<'a> {
    /// Per level (index into [`LEVELS`]): the touched rows in key order.
    levels: Vec<Vec<(RowKey<'a>, Gain)>>,
}

impl<'a> Deltas<'a> {
    /// Fold `events` into every level and, for the attributes named in
    /// `tag_keys` (values of at most `RUN_TAG_VALUE_MAX` bytes), the per-tag
    /// levels (indexes after [`LEVELS`]'s).
    fn of(events: &[&'a AgentEvent], tag_keys: &[String]) -> Self {
        let cols = storage::aggregates();
        let shape = FoldShape::get();
        // Every string of a key (org, dimension values, tag keys and
        // values) is numbered once per event, so the dozen levels hash and
        // compare small integers; the keys get their strings back at the
        // end. Folded in hash maps (a chunk touches tens of thousands of
        // rows per level: a tree would compare keys a dozen times per event
        // and level), then sorted once, in the strings' order.
        let mut names = Interner::default();
        let mut levels: Vec<FxHashMap<IdKey, Gain>> =
            vec![FxHashMap::default(); LEVELS.len() + storage::TAG_LEVELS.len()];
        let mut values: Vec<(usize, i64)> = Vec::with_capacity(shape.dense.len() + 1);
        for e in events {
            let bucket = lat_bucket(e);
            let counted = storage::Counted {
                event_type: &e.event_type,
                status: e.status.as_deref(),
                tokens: [
                    e.input_tokens,
                    e.output_tokens,
                    e.cache_read_tokens,
                    e.cache_write_tokens,
                    e.reasoning_tokens,
                ],
                cost_usd: e.cost_usd,
                lat_bucket: bucket,
            };
            // What the event adds, by column: a handful of the hundred (of
            // the histogram's buckets only its own, if any).
            values.clear();
            values.extend(shape.dense.iter().filter_map(|&i| {
                let v = cols[i].measure.count(&counted);
                (v != 0).then_some((i, v))
            }));
            if let Some(&at) = bucket.and_then(|b| shape.latency.get(usize::try_from(b).ok()?)) {
                values.push((at, 1));
            }
            let cost = e.cost_usd.unwrap_or(0.0);
            let org = names.id(&e.org_id);
            let all = [
                Some(names.id(&e.agent_id)),
                e.workflow_id.as_deref().map(|v| names.id(v)),
                e.provider.as_deref().map(|v| names.id(v)),
                e.model.as_deref().map(|v| names.id(v)),
            ];
            let add = |rows: &mut FxHashMap<IdKey, Gain>, width: i64, dims: [Option<u32>; 4]| {
                let key = (org, e.timestamp.div_euclid(width) * width, dims);
                let (sums, sum_cost) = rows
                    .entry(key)
                    .or_insert_with(|| (vec![0; cols.len()], 0.0));
                for &(i, v) in &values {
                    sums[i] += v;
                }
                *sum_cost += cost;
            };
            for ((mask, width), rows) in shape.levels.iter().zip(levels.iter_mut()) {
                let mut dims = [None; 4];
                for i in 0..4 {
                    if mask[i] {
                        dims[i] = all[i];
                    }
                }
                add(rows, *width, dims);
            }
            for (k, v) in &e.attributes {
                if v.len() > storage::RUN_TAG_VALUE_MAX || !tag_keys.contains(k) {
                    continue;
                }
                let tag = [Some(names.id(k)), Some(names.id(v)), None, None];
                for (width, rows) in shape
                    .tag_widths
                    .iter()
                    .zip(levels[LEVELS.len()..].iter_mut())
                {
                    add(rows, *width, tag);
                }
            }
        }
        let (strings, rank) = names.finish();
        let rank_of = |d: &Option<u32>| d.map_or(0, |d| rank[d as usize] + 1);
        let levels = levels
            .into_iter()
            .map(|rows| {
                let mut rows: Vec<(IdKey, Gain)> = rows.into_iter().collect();
                rows.sort_unstable_by_key(|((org, bucket, dims), _)| {
                    (rank[*org as usize], *bucket, dims.each_ref().map(rank_of))
                });
                rows.into_iter()
                    .map(|((org, bucket, dims), gain)| {
                        let name = |d: u32| strings[d as usize];
                        ((name(org), bucket, dims.map(|d| d.map(name))), gain)
                    })
                    .collect()
            })
            .collect();
        Self { levels }
    }

    /// Rows of level `i` as a binary COPY payload: for `agg_deltas` (the
    /// level first, every dimension column) or straight into the level's
    /// table (its own key columns: [`level_key`]).
    fn write_rows<'r>(
        c: &mut CopyBinary,
        i: usize,
        rows: impl Iterator<Item = &'r (RowKey<'a>, Gain)>,
        into_level: bool,
    ) where
        'a: 'r,
    {
        let cols = storage::aggregates();
        let (_, dims_at) = level_key(i);
        for ((org, bucket, dims), (sums, cost)) in rows {
            if into_level {
                c.row((2 + dims_at.len() + cols.len()) as i16);
            } else {
                c.row((3 + dims.len() + cols.len()) as i16);
                c.int2(Some(i as i16));
            }
            c.text(Some(org));
            c.timestamptz(Some(*bucket));
            if into_level {
                for &d in &dims_at {
                    c.text(dims[d]);
                }
            } else {
                for d in dims {
                    c.text(*d);
                }
            }
            for (col, s) in cols.iter().zip(sums) {
                match col.kind {
                    ColumnKind::Float => c.float8(Some(*cost)),
                    ColumnKind::Count => c.int8(Some(*s)),
                    // Sparse columns hold NULL, never 0.
                    ColumnKind::SparseCount => c.int8((*s != 0).then_some(*s)),
                }
            }
        }
    }

    /// Add every level's rows; returns how many were new to their level
    /// and copied straight in.
    ///
    /// A row whose bucket is later than every bucket its org has in that
    /// level cannot be there yet: those (most of a backfill's, a live
    /// stream's new minutes and hours) are copied straight into the level
    /// (no staging, no conflict check per row), the rest are copied into
    /// the session's `agg_deltas` and added by one upsert statement. Only
    /// the deriver writes the levels in plain mode, one at a time
    /// (`DERIVE_LOCK`; a rebuild holds the projection lock), so nothing
    /// adds a row between the look at the latest buckets and the copy;
    /// should one be there all the same, the copy fails on the level's key
    /// and every row goes through the upsert instead.
    async fn apply(&self, tx: &mut PgConnection) -> Result<usize, sqlx::Error> {
        let mut orgs: Vec<&str> = self
            .levels
            .iter()
            .flat_map(|rows| rows.iter().map(|((org, _, _), _)| *org))
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        // Per level, the chunk's earliest bucket: only buckets from it on
        // decide (whatever is older cannot make a row of the chunk not
        // new), and the levels' partitions before it are not probed.
        let mut q = sqlx::query_as(latest_sql()).bind(&orgs);
        for rows in &self.levels {
            let first = rows.iter().map(|((_, bucket, _), _)| *bucket).min();
            q = q.bind(first.and_then(DateTime::<Utc>::from_timestamp_micros));
        }
        let latest: Vec<(i16, String, Option<DateTime<Utc>>)> = q.fetch_all(&mut *tx).await?;
        let latest: FxHashMap<(usize, &str), i64> = latest
            .iter()
            .filter_map(|(i, org, t)| {
                Some(((*i as usize, org.as_str()), t.as_ref()?.timestamp_micros()))
            })
            .collect();
        // Each level's rows: new (copied straight in), the rest upserted.
        type Rows<'r, 'a> = Vec<Vec<&'r (RowKey<'a>, Gain)>>;
        let (fresh, old): (Rows<'_, 'a>, Rows<'_, 'a>) = self
            .levels
            .iter()
            .enumerate()
            .map(|(i, rows)| {
                rows.iter().partition(|((org, bucket, _), _)| {
                    latest.get(&(i, *org)).is_none_or(|last| bucket > last)
                })
            })
            .unzip();
        let mut copied = 0;
        if fresh.iter().any(|rows| !rows.is_empty()) {
            savepoint(tx, "new_level_rows").await?;
            let written = Self::copy_new(tx, &fresh).await;
            match unless_stored(tx, "new_level_rows", written).await? {
                Some(n) => copied = n,
                None => tracing::warn!("a level row thought new was there: upserting every row"),
            }
        }
        // The rest (everything, if nothing was copied straight in).
        let rest: Rows<'_, 'a> = if copied == 0 {
            self.levels
                .iter()
                .map(|rows| rows.iter().collect())
                .collect()
        } else {
            old
        };
        let upserted: usize = rest.iter().map(Vec::len).sum();
        if upserted > 0 {
            let mut c = CopyBinary::with_capacity(upserted * 300);
            for (i, rows) in rest.iter().enumerate() {
                Self::write_rows(&mut c, i, rows.iter().copied(), false);
            }
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('pg_temp.agg_deltas') IS NOT NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                sqlx::raw_sql(deltas_ddl()).execute(&mut *tx).await?;
            }
            copy_in(
                tx,
                "COPY agg_deltas FROM STDIN (FORMAT binary)",
                &c.finish(),
            )
            .await?;
            sqlx::query(levels_sql()).execute(&mut *tx).await?;
        }
        Ok(copied)
    }

    /// COPY each level's `fresh` rows straight into it, a statement per
    /// level that has any; how many.
    async fn copy_new(
        tx: &mut PgConnection,
        fresh: &[Vec<&(RowKey<'a>, Gain)>],
    ) -> Result<usize, sqlx::Error> {
        let mut copied = 0;
        for (i, rows) in fresh.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let mut c = CopyBinary::with_capacity(rows.len() * 300);
            Self::write_rows(&mut c, i, rows.iter().copied(), true);
            copy_in(tx, level_copy_sql(i), &c.finish()).await?;
            copied += rows.len();
        }
        Ok(copied)
    }
}

/// Level `i` of the deltas ([`LEVELS`], then the per-tag levels): its
/// relation and where its key columns after org and bucket sit in a
/// [`RowKey`]'s dimensions.
fn level_key(i: usize) -> (&'static storage::Level, Vec<usize>) {
    match LEVELS.get(i) {
        Some(l) => (
            l,
            l.dims
                .iter()
                .filter_map(|d| storage::DIMENSIONS.iter().position(|x| x == d))
                .collect(),
        ),
        // The per-tag levels: key and value in the first two.
        None => (&storage::TAG_LEVELS[i - LEVELS.len()], vec![0, 1]),
    }
}

/// The number of levels the deltas fold into.
const DELTA_LEVELS: usize = LEVELS.len() + storage::TAG_LEVELS.len();

/// `COPY` of level `i`'s rows straight into its relation.
fn level_copy_sql(i: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        let names: Vec<&str> = storage::aggregates()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        (0..DELTA_LEVELS)
            .map(|i| {
                let (l, _) = level_key(i);
                format!(
                    "COPY {} (org_id, bucket{}, {}) FROM STDIN (FORMAT binary)",
                    l.name,
                    l.dims_list(""),
                    names.join(", ")
                )
            })
            .collect()
    });
    &all[i]
}

/// The latest bucket of each org `$1` in each level `i` from bucket
/// `$(i + 2)` on (NULL: none; a NULL bound reads nothing), as (level index,
/// org, bucket): a backward probe of the level's key index in each
/// partition from that bucket on.
fn latest_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        (0..DELTA_LEVELS)
            .map(|i| {
                format!(
                    "SELECT {i}::int2, o, (SELECT max(bucket) FROM {} WHERE org_id = o
                                           AND bucket >= ${}::timestamptz)
                     FROM unnest($1::text[]) o",
                    level_key(i).0.name,
                    i + 2
                )
            })
            .collect::<Vec<_>>()
            .join("\nUNION ALL ")
    })
}

/// The columns of `events` the writer fills, in [`events_copy_payload`]'s
/// order (`txid` takes its default).
pub const EVENTS_COPY_COLUMNS: &str = "event_id, org_id, ts, agent_id, workflow_id, run_id, \
    type, status, latency_ms, lat_bucket, provider, model, input_tokens, output_tokens, \
    cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, cost_source, tool_name, \
    error_type, error_message, trace_id, span_id, attributes, ingested_at, project_id, \
    machine_id, workspace_id, session_id";

/// One COPY BINARY payload holding `events` as rows of the events table,
/// the columns [`EVENTS_COPY_COLUMNS`] in their order (the writer's staging
/// and the storage benchmark's raw baseline).
pub fn events_copy_payload(events: &[&AgentEvent]) -> Vec<u8> {
    let mut c = CopyBinary::with_capacity(events.len() * 400);
    for e in events {
        c.row(30);
        let id = uuid::Uuid::parse_str(&e.event_id).unwrap_or_default();
        c.field(Some(id.as_bytes()));
        c.text(Some(&e.org_id));
        c.timestamptz(Some(e.timestamp));
        c.text(Some(&e.agent_id));
        c.text(e.workflow_id.as_deref());
        c.text(e.run_id.as_deref());
        c.text(Some(&e.event_type));
        c.text(e.status.as_deref());
        c.int8(e.latency_ms);
        c.int2(lat_bucket(e));
        c.text(e.provider.as_deref());
        c.text(e.model.as_deref());
        for t in [
            e.input_tokens,
            e.output_tokens,
            e.cache_read_tokens,
            e.cache_write_tokens,
            e.reasoning_tokens,
        ] {
            c.int8(t);
        }
        c.float8(e.cost_usd);
        c.text(e.cost_source.as_deref());
        c.text(e.tool_name.as_deref());
        c.text(e.error_type.as_deref());
        c.text(e.error_message.as_deref());
        c.text(e.trace_id.as_deref());
        c.text(e.span_id.as_deref());
        let mut json = vec![1u8];
        json.extend_from_slice(&serde_json::to_vec(&e.attributes).unwrap_or_default());
        c.field(Some(&json));
        c.timestamptz(e.ingested_at);
        // The hierarchy (contract v2), added after the columns above.
        for h in [&e.project_id, &e.machine_id, &e.workspace_id, &e.session_id] {
            c.text(h.as_deref());
        }
    }
    c.finish()
}

/// Histogram bucket of a finished run's latency (the aggregates' `lat_bNN`).
fn lat_bucket(e: &AgentEvent) -> Option<i16> {
    match e.kind() {
        Some(EventType::RunCompleted | EventType::RunFailed) => {
            e.latency_ms.map(|l| histogram::bucket_of(l) as i16)
        }
        _ => None,
    }
}

/// Stored next offsets of a consumer group for the given topic:
/// `(partition, next offset)`.
pub(crate) async fn load_offsets(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Stored {
        partition: i32,
        next_offset: i64,
    }
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.partition, r.next_offset))
        .collect())
}

/// Writes batches for one consumer group in one storage mode.
pub struct Writer {
    mode: Mode,
    group: String,
    /// Days whose partitions (of the tables partitioned in this mode) are
    /// known to exist.
    partitions: HashSet<NaiveDate>,
    /// Event attributes rolled up per value (`database.storage.tag_keys`).
    tag_keys: Vec<String>,
    /// The worker's deriver: told after each committed batch, handed its
    /// events (plain mode).
    handoff: Option<std::sync::Arc<Handoff>>,
}

impl Writer {
    /// A writer rolling up the default tag keys
    /// ([`storage::DEFAULT_TAG_KEYS`]; see [`Writer::with_tag_keys`]).
    pub fn new(mode: Mode, group: impl Into<String>) -> Self {
        Self {
            mode,
            group: group.into(),
            partitions: HashSet::new(),
            tag_keys: storage::StorageConfig::default().tag_keys,
            handoff: None,
        }
    }

    /// Tell the deriver of `handoff` after each committed batch and hand
    /// it the batch's events (plain mode: it then looks at once, and reads
    /// back only what was not handed over).
    pub fn handing_over(mut self, handoff: std::sync::Arc<Handoff>) -> Self {
        self.handoff = Some(handoff);
        self
    }

    /// Roll up these event attributes per value (the configuration's
    /// `database.storage.tag_keys`, as set-up recorded them).
    pub fn with_tag_keys(mut self, keys: &[String]) -> Self {
        self.tag_keys = keys.to_vec();
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Apply a batch atomically: the new events, everything derived from
    /// them, and `offsets` (topic, partition, next offset). Events already
    /// stored are skipped, so a replayed batch changes nothing but offsets.
    pub async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[AgentEvent],
        offsets: &[(String, i32, i64)],
    ) -> agentops_runtime::Result<Applied> {
        // Cost corrections are applied after the batch's events, never stored as events.
        let (corrections, events): (Vec<&AgentEvent>, Vec<&AgentEvent>) =
            events.iter().partition(|e| correction::is_correction(e));
        // Dedupe inside the batch first (the same event twice in one
        // statement), on the table's key.
        let mut seen = HashSet::with_capacity(events.len());
        let batch: Vec<&AgentEvent> = events
            .iter()
            .copied()
            .filter(|e| {
                uuid::Uuid::parse_str(&e.event_id).is_ok()
                    && seen.insert((e.event_id.as_str(), e.org_id.as_str(), e.timestamp))
            })
            .collect();
        // Plain mode: every partitioned table; TimescaleDB mode: the per-tag
        // hour level.
        if self.mode == Mode::Postgres || !self.tag_keys.is_empty() {
            let mut days: Vec<NaiveDate> = batch
                .iter()
                .map(|e| ts(e.timestamp).date_naive())
                .filter(|d| !self.partitions.contains(d))
                .collect();
            days.sort();
            days.dedup();
            if !days.is_empty() {
                storage::ensure_partitions_of(conn, storage::partitioned_in(self.mode), &days)
                    .await?;
                self.partitions.extend(days);
            }
        }
        let result = self.apply_tx(conn, batch, &corrections, offsets).await;
        if result.is_err() {
            // A rebuild may have dropped partitions under us: check them again.
            self.partitions.clear();
        }
        let (inserted, corrected) = result?;
        Ok(Applied {
            inserted,
            duplicates: events.len() - inserted,
            corrected,
        })
    }

    async fn apply_tx(
        &self,
        conn: &mut PgConnection,
        batch: Vec<&AgentEvent>,
        corrections: &[&AgentEvent],
        offsets: &[(String, i32, i64)],
    ) -> Result<(usize, usize), sqlx::Error> {
        let mut tx = conn.begin().await?;
        // Shared with other workers; a rebuild holds it exclusively.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(PROJECTION_LOCK)
            .execute(&mut *tx)
            .await?;
        if self.mode == Mode::Postgres {
            // The deriver folds the events and applies the corrections later.
            let inserted = if batch.is_empty() {
                0
            } else {
                copy_new_events(&mut tx, &batch).await?
            };
            let wanted = crate::corrections::latest(corrections);
            if !wanted.is_empty() {
                sqlx::query(
                    "INSERT INTO pending_corrections (event_id, ts, org_id, cost_usd)
                     SELECT e, t, o, c
                     FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::float8[])
                         WITH ORDINALITY AS u(e, t, o, c, n)
                     ORDER BY n",
                )
                .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
                .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
                .bind(wanted.iter().map(|w| w.2.clone()).collect::<Vec<_>>())
                .bind(wanted.iter().map(|w| w.3).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            }
            // Also kept as pending: moved to `{group}.derived` once the
            // deriver has the events.
            upsert_offsets(&mut tx, &self.group, offsets, upsert_pending_offsets_sql()).await?;
            // Every event of the batch is new (a batch with a stored one
            // inserts fewer): they are what this transaction committed, the
            // deriver's input for its id (the `events.txid` default's).
            let whole = match &self.handoff {
                Some(h) if inserted > 0 && inserted == batch.len() && h.has_room(inserted) => Some(
                    sqlx::query_scalar::<_, i64>("SELECT pg_current_xact_id()::text::int8")
                        .fetch_one(&mut *tx)
                        .await?,
                ),
                _ => None,
            };
            tx.commit().await?;
            if let Some(h) = &self.handoff {
                if let Some(txid) = whole {
                    h.put(txid, batch.iter().map(|e| stored_form(e)).collect());
                }
                h.written();
            }
            return Ok((inserted, 0));
        }
        let inserted: HashSet<Key> = if batch.is_empty() {
            HashSet::new()
        } else {
            let tags = (!self.tag_keys.is_empty()).then_some(&self.tag_keys[..]);
            insert_events(&mut tx, &batch, tags).await?
        };
        let new: Vec<&AgentEvent> = batch
            .into_iter()
            .filter(|e| {
                uuid::Uuid::parse_str(&e.event_id)
                    .is_ok_and(|id| inserted.contains(&(id, e.org_id.clone(), e.timestamp)))
            })
            .collect();
        derive(&mut tx, self.mode, &new, &self.tag_keys).await?;
        let corrected =
            crate::corrections::apply(&mut tx, self.mode, corrections, &self.tag_keys).await?;
        upsert_offsets(&mut tx, &self.group, offsets, UPSERT_OFFSETS).await?;
        tx.commit().await?;
        Ok((new.len(), corrected))
    }

    /// Plain mode: derive one chunk of what was written (at most about
    /// `max_events` events, whole writer transactions); see [`crate::derive`].
    /// Nothing to do in TimescaleDB mode.
    pub async fn derive(
        &self,
        conn: &mut PgConnection,
        max_events: usize,
    ) -> agentops_runtime::Result<Derived> {
        Ok(crate::derive::derive_once(
            conn,
            self.mode,
            &self.tag_keys,
            max_events,
            self.handoff.as_deref(),
        )
        .await?)
    }

    /// Derive everything written so far (chunks of `DERIVE_CHUNK` events):
    /// after it the derived tables count every stored event.
    pub async fn settle(&self, conn: &mut PgConnection) -> agentops_runtime::Result<Derived> {
        Ok(crate::derive::settle(
            conn,
            self.mode,
            &self.tag_keys,
            DERIVE_CHUNK,
            self.handoff.as_deref(),
        )
        .await?)
    }
}

/// Default size of a derived chunk (events).
pub const DERIVE_CHUNK: usize = 50_000;

/// Everything derived from new events but the per-tag levels: the aggregate
/// levels (plain mode; TimescaleDB's continuous aggregates follow `events`),
/// runs, agents, the coding-agent hierarchy. In the writer's transaction
/// (TimescaleDB mode) or the deriver's (plain mode). Returns how many level
/// rows and runs were new and copied straight in (plain mode).
pub(crate) async fn derive(
    tx: &mut PgConnection,
    mode: Mode,
    new: &[&AgentEvent],
    tag_keys: &[String],
) -> Result<(usize, usize), sqlx::Error> {
    if new.is_empty() {
        return Ok((0, 0));
    }
    let copied = if mode == Mode::Postgres {
        // The per-tag levels with the others (TimescaleDB mode: in the
        // events' insert, see `insert_with_tags_sql`).
        Deltas::of(new, tag_keys).apply(tx).await?
    } else {
        0
    };
    // Plain mode: only the deriver writes `runs`, one at a time.
    let runs = rows::upsert_runs(tx, new, mode == Mode::Postgres).await?;
    rows::upsert_agents(tx, new).await?;
    crate::hierarchy::upsert(tx, new).await?;
    Ok((copied, runs))
}

/// [`UPSERT_OFFSETS`] that also records the offsets in `pending_offsets`
/// (plain mode), in the same statement.
fn upsert_pending_offsets_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH pending AS (
                INSERT INTO pending_offsets (consumer_group, topic, partition, next_offset)
                SELECT $1, * FROM UNNEST($2::text[], $3::int4[], $4::int8[]))
            {UPSERT_OFFSETS}"
        )
    })
}

/// `sql`: [`UPSERT_OFFSETS`] or [`upsert_pending_offsets_sql`].
async fn upsert_offsets(
    tx: &mut PgConnection,
    group: &str,
    offsets: &[(String, i32, i64)],
    sql: &str,
) -> Result<(), sqlx::Error> {
    if !offsets.is_empty() {
        sqlx::query(sql)
            .bind(group)
            .bind(offsets.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
            .bind(offsets.iter().map(|o| o.1).collect::<Vec<_>>())
            .bind(offsets.iter().map(|o| o.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// An event as the deriver would read it back from `events`: the same but
/// for the id, in the form the table prints a UUID.
fn stored_form(e: &AgentEvent) -> AgentEvent {
    let mut e = e.clone();
    if let Ok(id) = uuid::Uuid::parse_str(&e.event_id) {
        e.event_id = id.to_string();
    }
    e
}

/// The events table's key: (event_id, org_id, ts in µs).
type Key = (uuid::Uuid, String, i64);

/// Insert the batch's events (and with `tags`, fold them into the per-tag
/// levels); the keys of those that were new.
async fn insert_events(
    tx: &mut PgConnection,
    batch: &[&AgentEvent],
    tags: Option<&[String]>,
) -> Result<HashSet<Key>, sqlx::Error> {
    let sql = if tags.is_some() {
        insert_with_tags_sql()
    } else {
        insert_sql()
    };
    /// The key of an inserted row (`RETURNING event_id, org_id, ts`).
    #[derive(sqlx::FromRow)]
    struct Inserted {
        event_id: uuid::Uuid,
        org_id: String,
        ts: DateTime<Utc>,
    }
    let q = bind_events(sqlx::query_as(sql), batch);
    let rows: Vec<Inserted> = match tags {
        Some(keys) => q.bind(keys),
        None => q,
    }
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.event_id, r.org_id, r.ts.timestamp_micros()))
        .collect())
}

/// The batch's columns bound as `$1`..`$30` of [`INSERT_EVENTS`].
fn bind_events<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    batch: &[&AgentEvent],
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    macro_rules! col {
        ($f:expr) => {
            batch.iter().map($f).collect::<Vec<_>>()
        };
    }
    q.bind(col!(
        |e| uuid::Uuid::parse_str(&e.event_id).unwrap_or_default()
    ))
    .bind(col!(|e| e.org_id.clone()))
    .bind(col!(|e| ts(e.timestamp)))
    .bind(col!(|e| e.agent_id.clone()))
    .bind(col!(|e| e.workflow_id.clone()))
    .bind(col!(|e| e.run_id.clone()))
    .bind(col!(|e| e.event_type.clone()))
    .bind(col!(|e| e.status.clone()))
    .bind(col!(|e| e.latency_ms))
    .bind(col!(|e| lat_bucket(e)))
    .bind(col!(|e| e.provider.clone()))
    .bind(col!(|e| e.model.clone()))
    .bind(col!(|e| e.input_tokens))
    .bind(col!(|e| e.output_tokens))
    .bind(col!(|e| e.cache_read_tokens))
    .bind(col!(|e| e.cache_write_tokens))
    .bind(col!(|e| e.reasoning_tokens))
    .bind(col!(|e| e.cost_usd))
    .bind(col!(|e| e.cost_source.clone()))
    .bind(col!(|e| e.tool_name.clone()))
    .bind(col!(|e| e.error_type.clone()))
    .bind(col!(|e| e.error_message.clone()))
    .bind(col!(|e| e.trace_id.clone()))
    .bind(col!(|e| e.span_id.clone()))
    .bind(col!(
        |e| serde_json::to_value(&e.attributes).unwrap_or_default()
    ))
    .bind(col!(|e| e.ingested_at.map(ts)))
    .bind(col!(|e| e.project_id.clone()))
    .bind(col!(|e| e.machine_id.clone()))
    .bind(col!(|e| e.workspace_id.clone()))
    .bind(col!(|e| e.session_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mode_statement_feeds_every_level() {
        let sql = levels_sql();
        for (i, l) in LEVELS.iter().enumerate() {
            let name = l.name;
            assert!(sql.contains(&format!("INSERT INTO {name} AS a")), "{name}");
            assert!(
                sql.contains(&format!("FROM agg_deltas WHERE level = {i}\n")),
                "{name}"
            );
            assert!(sql.contains(&format!("ON CONFLICT ON CONSTRAINT {name}_key")));
        }
        assert!(sql.contains("INSERT INTO agg_org_1h AS a (org_id, bucket, events,"));
        assert!(
            sql.contains("INSERT INTO agg_model_1h AS a (org_id, bucket, provider, model, events,")
        );
        assert!(sql.contains(
            "lat_b79 = COALESCE(a.lat_b79 + EXCLUDED.lat_b79, a.lat_b79, EXCLUDED.lat_b79)"
        ));
        assert!(sql.contains("events = a.events + EXCLUDED.events"));
        for (j, l) in storage::TAG_LEVELS.iter().enumerate() {
            let i = LEVELS.len() + j;
            assert!(sql.contains(&format!(
                "INSERT INTO {} AS a (org_id, bucket, tag_key, tag_value,",
                l.name
            )));
            assert!(
                sql.contains("SELECT org_id, bucket, agent_id, workflow_id, events, runs_started")
            );
            assert!(sql.contains(&format!("FROM agg_deltas WHERE level = {i}\n")));
        }
        let ddl = deltas_ddl();
        for c in storage::aggregates() {
            assert!(ddl.contains(&format!(" {} ", c.name)), "{}", c.name);
        }
    }

    #[test]
    fn the_tagged_insert_folds_the_new_events_into_the_per_tag_levels() {
        let sql = insert_with_tags_sql();
        assert!(
            sql.starts_with("WITH ins AS (\nINSERT INTO events"),
            "{sql}"
        );
        assert!(sql.contains("t0 AS (INSERT INTO agg_tag_1h AS a"));
        assert!(sql.contains("t1 AS (INSERT INTO agg_tag_1d AS a"));
        assert!(sql.contains("FROM ins e CROSS JOIN LATERAL"));
        assert!(sql.ends_with("SELECT event_id, org_id, ts FROM ins"));
    }

    #[test]
    fn deltas_fold_a_batch_per_level_and_key() {
        let at = |secs: i64| 1_800_000_000_000_000 + secs * 1_000_000;
        let ev = |ty: &str, agent: &str, model: Option<&str>, t: i64| AgentEvent {
            event_type: ty.into(),
            org_id: "o".into(),
            agent_id: agent.into(),
            model: model.map(Into::into),
            provider: model.map(|_| "openai".into()),
            timestamp: at(t),
            ..Default::default()
        };
        let mut call = ev("llm_call", "a", Some("m"), 5);
        call.input_tokens = Some(10);
        call.cost_usd = Some(0.5);
        call.attributes = [
            ("team".to_owned(), "pay".to_owned()),
            ("host".to_owned(), "h1".to_owned()),
        ]
        .into();
        let mut unpriced = ev("llm_call", "b", Some("m"), 70);
        unpriced.output_tokens = Some(3);
        let mut done = ev("run_completed", "a", None, 20);
        done.latency_ms = Some(1500);
        let mut failed = ev("run_failed", "a", None, 4000);
        failed.status = Some("error".into());
        let list = [call, unpriced, done, failed];
        let refs: Vec<&AgentEvent> = list.iter().collect();
        let d = Deltas::of(&refs, &["team".to_owned()]);
        let cols = storage::aggregates();
        let col = |name: &str| cols.iter().position(|c| c.name == name).unwrap();
        let level = |name: &str| &d.levels[LEVELS.iter().position(|l| l.name == name).unwrap()];
        // Minutes of the four keys: a's call, a's run end (no model), b's call; the failure an hour on.
        assert_eq!(level("agg_1m").len(), 4);
        // The org's hours: two; its first holds three events, 13 tokens, one unpriced call.
        let org_h = level("agg_org_1h");
        assert_eq!(org_h.len(), 2);
        let (_, (first, cost)) = org_h.first().unwrap();
        assert_eq!(first[col("events")], 3);
        assert_eq!(first[col("input_tokens")] + first[col("output_tokens")], 13);
        assert_eq!(first[col("unpriced_calls")], 1);
        assert_eq!(first[col("runs_completed")], 1);
        let b = histogram::bucket_of(1500);
        assert_eq!(first[col(&storage::hist_column(b))], 1);
        assert_eq!(*cost, 0.5);
        // The model level: one row per (provider, model) and hour; the run
        // events have none.
        let models: Vec<[Option<&str>; 4]> =
            level("agg_model_1h").iter().map(|(k, _)| k.2).collect();
        assert_eq!(
            models,
            [
                [None, None, None, None],
                [None, None, Some("openai"), Some("m")],
                [None, None, None, None]
            ]
        );
        // Agents: a and b in the first hour, a in the second.
        let agents: Vec<Option<&str>> = level("agg_agent_1h").iter().map(|(k, _)| k.2[0]).collect();
        assert_eq!(agents, [Some("a"), Some("b"), Some("a")]);
        let (_, (second, _)) = &level("agg_agent_1h")[2];
        assert_eq!((second[col("runs_failed")], second[col("errors")]), (1, 1));
        // The per-tag levels: the rolled-up key only (`host` is not one).
        for tag_level in &d.levels[LEVELS.len()..] {
            let rows: Vec<_> = tag_level.iter().collect();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].0 .2, [Some("team"), Some("pay"), None, None]);
            assert_eq!((rows[0].1 .0[col("events")], rows[0].1 .1), (1, 0.5));
        }
    }

    #[test]
    fn only_finished_runs_have_a_latency_bucket() {
        let done = AgentEvent {
            event_type: "run_completed".into(),
            latency_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(lat_bucket(&done), Some(histogram::bucket_of(1500) as i16));
        let call = AgentEvent {
            event_type: "llm_call".into(),
            latency_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(lat_bucket(&call), None);
    }
}
