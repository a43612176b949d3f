//! The org's governance configuration rows (budgets, alert rules,
//! policies): the [`Configuration`] each table's typed item implements, and
//! [`load`], the one reader of those tables.
//!
//! An item is validated by `from_fields` from a JSON object of its columns:
//! a request body on its way in (the query API), and the stored row
//! (`to_jsonb`) on its way out (the processors, the budget status), so a
//! row means the same thing to both and validation lives once.

use std::ops::Deref;

use sqlx::types::Json;

use crate::fields::{FieldError, Obj};

/// A typed configuration item and the table it is stored in.
pub trait Configuration: Sized + Clone {
    /// The table (`budgets`, `alert_rules`, `policies`).
    const TABLE: &'static str;
    /// The noun of messages and audit actions (`budget` → `budget.create`).
    const NOUN: &'static str;
    /// The writable columns, which are exactly the accepted body fields.
    const FIELDS: &'static [&'static str];
    /// Fields an update cannot change.
    const FIXED: &'static [&'static str];

    /// Validate an object of columns (absent or `null` fields take their
    /// defaults; fields not in [`Configuration::FIELDS`] are ignored).
    fn from_fields(m: &Obj) -> Result<Self, FieldError>;

    /// The writable columns, normalized (exactly [`Configuration::FIELDS`]).
    fn columns(&self) -> Obj;

    /// Whether the processors act on it.
    fn enabled(&self) -> bool {
        true
    }
}

/// Validate `m` and return its normalized columns.
pub fn normalize<T: Configuration>(m: &Obj) -> Result<Obj, FieldError> {
    T::from_fields(m).map(|t| t.columns())
}

/// A stored item: its row id and org with the item.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The row's UUID, as text.
    pub id: String,
    pub org_id: String,
    pub item: T,
}

impl<T> Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    org_id: String,
    columns: Json<Obj>,
}

/// The stored items of `T`'s table, of one org or (`None`) of all, ordered
/// by org and name; disabled ones left out when `only_enabled`. A row that no
/// longer validates (written before a check was added) is skipped with a
/// warning: acting on a half-understood budget or rule would be worse.
pub async fn load<T: Configuration>(
    conn: &mut sqlx::PgConnection,
    org: Option<&str>,
    only_enabled: bool,
) -> Result<Vec<Stored<T>>, sqlx::Error> {
    let sql = format!(
        "SELECT id::text AS id, org_id, to_jsonb(t) AS columns FROM {} t
         WHERE $1::text IS NULL OR org_id = $1 ORDER BY org_id, name",
        T::TABLE
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(org).fetch_all(conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        match T::from_fields(&r.columns) {
            Ok(item) if only_enabled && !item.enabled() => {}
            Ok(item) => out.push(Stored {
                id: r.id,
                org_id: r.org_id,
                item,
            }),
            Err(e) => tracing::warn!(
                table = T::TABLE, id = %r.id, org_id = %r.org_id, error = %e,
                "stored row does not validate; skipped"
            ),
        }
    }
    Ok(out)
}
