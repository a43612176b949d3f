//! The derived relations checked against their definitions over the
//! events: what the storage conformance suite and the deriver's tests
//! compare row for row.

use agentops_runtime::storage::{self, StorageConfig};
use anyhow::{bail, ensure, Result};
use sqlx::PgPool;

/// The select lists of every aggregate column as stored and as defined
/// over events (`from_events`), the cost rounded to 1e-9 (sums in another
/// order).
pub fn column_lists() -> (String, String) {
    let cols = storage::aggregates();
    let out = |expr: &str, c: &storage::AggColumn| match c.kind {
        storage::ColumnKind::Float => format!("round(({expr})::numeric, 9) AS {}", c.name),
        _ => format!("{expr} AS {}", c.name),
    };
    let stored: Vec<String> = cols.iter().map(|c| out(&c.name, c)).collect();
    let defined: Vec<String> = cols.iter().map(|c| out(&c.from_events, c)).collect();
    (stored.join(", "), defined.join(", "))
}

/// The rows of `stored` (a level's) equal those of `defined` (its
/// definition over events), row for row, both ordered by their key; `$1`
/// is the org, `$2` the tag keys when given.
async fn same_rows(
    pool: &PgPool,
    org: &str,
    level: &str,
    stored: &str,
    defined: &str,
    keys: Option<&[String]>,
) -> Result<()> {
    let mut rows = Vec::new();
    for sql in [stored, defined] {
        let q = sqlx::query_scalar::<_, String>(sql).bind(org);
        let q = match keys {
            Some(k) => q.bind(k.to_vec()),
            None => q,
        };
        rows.push(q.fetch_all(pool).await?);
    }
    let (got, want) = (&rows[0], &rows[1]);
    ensure!(!want.is_empty(), "no events for {level}");
    if let Some((g, w)) = got.iter().zip(want).find(|(g, w)| g != w) {
        bail!("{level} differs from its definition:\n{g}\n{w}");
    }
    ensure!(
        got.len() == want.len(),
        "{level}: {} rows, its definition {}",
        got.len(),
        want.len()
    );
    Ok(())
}

/// Every level holds, row for row and column for column, its definition
/// evaluated over the org's events (the `from_events` expressions grouped by
/// the level's bucket and key): whatever folds the deltas (the plain-mode
/// writer in Rust, TimescaleDB's refresh), the rows are those.
pub async fn levels_are_their_definition(pool: &PgPool, org: &str) -> Result<()> {
    let (stored, defined) = column_lists();
    for l in &storage::LEVELS {
        let dims = l.dims_list("");
        let order: String = l
            .dims
            .iter()
            .map(|d| format!(", {d} NULLS FIRST"))
            .collect();
        let q = |select: String| {
            format!("SELECT to_jsonb(x)::text FROM ({select}) x ORDER BY bucket{order}")
        };
        let stored_sql = q(format!(
            "SELECT bucket{dims}, {stored} FROM {} WHERE org_id = $1",
            l.name
        ));
        let defined_sql = q(format!(
            "SELECT date_bin(INTERVAL '{}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket{dims}, {defined}
             FROM events WHERE org_id = $1 GROUP BY 1{dims}",
            l.width,
        ));
        same_rows(pool, org, l.name, &stored_sql, &defined_sql, None).await?;
    }
    Ok(())
}

/// The per-tag levels hold their definition over the org's events: the
/// aggregate columns under each rolled-up attribute (default `tag_keys`;
/// values of at most 256 bytes), whatever wrote them (the writer, the fill
/// of a new key at set-up).
pub async fn tag_levels_are_their_definition(pool: &PgPool, org: &str) -> Result<()> {
    let (stored, defined) = column_lists();
    let keys = StorageConfig::default().tag_keys;
    for l in &storage::TAG_LEVELS {
        let stored_sql = format!(
            "SELECT to_jsonb(x)::text FROM (SELECT bucket, tag_key, tag_value, {stored} FROM {}
             WHERE org_id = $1 AND $2::text[] IS NOT NULL) x ORDER BY bucket, tag_key, tag_value",
            l.name
        );
        let defined_sql = format!(
            "SELECT to_jsonb(x)::text FROM (
               SELECT date_bin(INTERVAL '{}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                      a.key AS tag_key, a.value #>> '{{}}' AS tag_value, {defined}
               FROM events, jsonb_each(attributes) AS a
               WHERE org_id = $1 AND a.key = ANY($2) AND octet_length(a.value #>> '{{}}') <= 256
               GROUP BY 1, 2, 3) x ORDER BY bucket, tag_key, tag_value",
            l.width,
        );
        same_rows(pool, org, l.name, &stored_sql, &defined_sql, Some(&keys)).await?;
    }
    Ok(())
}
