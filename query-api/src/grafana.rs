//! Read-only Grafana access per org (`admin grafana-role`, see
//! `docs/grafana.md`).
//!
//! The dashboards in `deploy/grafana/` read the schema [`SCHEMA`]: one view
//! per relation they use ([`RELATIONS`]), each the base relation's rows of
//! the org mapped to `current_user` in `grafana.org_roles`, with
//! `security_barrier` (a function in the caller's query cannot see the rows
//! filtered out). The views belong to the application's role, so they read
//! the base relations with its rights; an org's Grafana login role gets
//! `USAGE` on the schema and `SELECT` on the views, nothing on the base
//! relations or `grafana.org_roles`. The same views work over tables (plain
//! PostgreSQL) and continuous aggregates (TimescaleDB), where row-level
//! security is not available.
//!
//! [`setup`] (re)creates the schema, the mapping table, the helper
//! functions and the views, and grants every mapped role again (a view
//! dropped with its relation by `projections rebuild` comes back);
//! [`grant_role`] creates or updates one login role and maps it to an org.
//! Both are idempotent and run in one transaction under an advisory lock.

use std::fmt::Write as _;

use agentops_runtime::storage::{self, StorageConfig};
use anyhow::{bail, Context};
use sqlx::{PgConnection, PgPool};

/// The schema the dashboards read.
pub const SCHEMA: &str = "grafana";

/// The non-aggregate relations the dashboards read (the aggregate levels
/// are [`storage::LEVELS`] and [`storage::TAG_LEVELS`]). `orgs` is exposed as
/// `grafana.orgs (org_id, name)`.
pub const OTHER_RELATIONS: [&str; 6] = [
    "runs",
    "agents",
    "budgets",
    "alerts",
    "agent_controls",
    "orgs",
];

/// Every relation with a view in [`SCHEMA`].
pub fn relations() -> Vec<&'static str> {
    storage::LEVELS
        .iter()
        .chain(&storage::TAG_LEVELS)
        .map(|l| l.name)
        .chain(OTHER_RELATIONS)
        .collect()
}

/// Advisory lock key serializing [`setup`] and [`grant_role`] ("grafana!").
const LOCK: i64 = 0x6772_6166_616e_6121;

/// `"name"` with embedded quotes doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A role name the command accepts: 1 to 63 of `a-z`, `0-9`, `_`, starting
/// with a letter or `_`, not `pg_...` (reserved), so it never needs quoting
/// in the connection settings of Grafana.
pub fn valid_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && name.len() <= 63
        && name
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && !name.starts_with("pg_")
}

/// The mapped org of `current_user`: the filter of every view.
const ORG_OF_CURRENT_USER: &str =
    "(SELECT m.org_id FROM grafana.org_roles m WHERE m.role_name = current_user)";

/// The helper functions the dashboards call (created in [`SCHEMA`]):
/// - `hist_sum(int8[])`: an aggregate adding latency histograms bucket by
///   bucket (the views' `lat_hist`), as the query API merges them;
/// - `hist_quantile(int8[], q)`: the nearest-rank `q` quantile of a
///   histogram in ms, the geometric middle of its bucket (0.5 for bucket 0),
///   NULL when empty: `agentops_schemas::histogram::quantile` in SQL;
/// - `level_for(from, to)`: `minute`, `hour` or `day`, the coarsest level a
///   panel over `[from, to]` should read: minutes for ranges of up to 6 hours
///   still within the minute levels' retention, days for ranges over 31 days
///   or reaching past the hour levels' retention, hours otherwise.
fn functions_sql(cfg: &StorageConfig) -> Vec<String> {
    let kept = |days: u32| {
        if days == 0 {
            "true".to_owned()
        } else {
            // A day short of the retention: the oldest partition may be
            // dropped at any time.
            format!("f >= now() - interval '{} days'", days.saturating_sub(1))
        }
    };
    vec![
        "CREATE OR REPLACE FUNCTION grafana.hist_add(a int8[], b int8[]) RETURNS int8[]
         LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
           SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE ARRAY(
             SELECT COALESCE(a[i], 0) + COALESCE(b[i], 0)
             FROM generate_series(1, greatest(cardinality(a), cardinality(b))) AS i ORDER BY i)
           END $$"
            .to_owned(),
        "CREATE OR REPLACE AGGREGATE grafana.hist_sum(int8[]) (
           SFUNC = grafana.hist_add, STYPE = int8[], PARALLEL = SAFE)"
            .to_owned(),
        "CREATE OR REPLACE FUNCTION grafana.hist_quantile(h int8[], q float8) RETURNS float8
         LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
           SELECT CASE WHEN s.i = 0 THEN 0.5 ELSE power(2::float8, (2 * s.i - 1) / 8.0::float8) END
           FROM (SELECT t.i - 1 AS i,
                        sum(t.c) OVER (ORDER BY t.i) AS seen,
                        sum(t.c) OVER () AS total
                 FROM unnest(h) WITH ORDINALITY AS t(c, i)) s
           WHERE s.total > 0
             AND s.seen >= least(greatest(ceil(q * s.total::float8), 1), s.total)
           ORDER BY s.i LIMIT 1 $$"
            .to_owned(),
        format!(
            "CREATE OR REPLACE FUNCTION grafana.level_for(f timestamptz, t timestamptz) RETURNS text
             LANGUAGE sql STABLE PARALLEL SAFE AS $$
               SELECT CASE
                 WHEN t - f <= interval '6 hours' AND {minute} THEN 'minute'
                 WHEN t - f > interval '31 days' OR NOT ({hour}) THEN 'day'
                 ELSE 'hour' END $$",
            minute = kept(cfg.minute_retention_days),
            hour = kept(cfg.hour_retention_days),
        ),
    ]
}

/// `CREATE VIEW` of `rel` over the base relation in `base` (a quoted schema).
fn view_sql(rel: &str, base: &str) -> String {
    let levels = storage::LEVELS.iter().chain(&storage::TAG_LEVELS);
    let select = if rel == "orgs" {
        format!(
            "SELECT o.id AS org_id, o.name FROM {base}.orgs o WHERE o.id = {ORG_OF_CURRENT_USER}"
        )
    } else {
        let mut extra = String::new();
        if levels.clone().any(|l| l.name == rel) {
            // The run latency histogram as one array (`hist_sum`, `hist_quantile`).
            let buckets: Vec<String> = (0..agentops_schemas::histogram::BUCKETS)
                .map(|i| format!("COALESCE(r.{}, 0)", storage::hist_column(i)))
                .collect();
            let _ = write!(extra, ", ARRAY[{}]::int8[] AS lat_hist", buckets.join(", "));
        }
        format!(
            "SELECT r.*{extra} FROM {base}.{rel} r WHERE r.org_id = {ORG_OF_CURRENT_USER}",
            rel = ident(rel)
        )
    };
    format!(
        "CREATE VIEW grafana.{} WITH (security_barrier) AS {select}",
        ident(rel)
    )
}

/// The statements of [`setup`] for base relations in schema `base`.
pub fn setup_sql(base: &str, cfg: &StorageConfig) -> Vec<String> {
    let base = ident(base);
    let mut sql = vec![
        "CREATE SCHEMA IF NOT EXISTS grafana".to_owned(),
        "REVOKE ALL ON SCHEMA grafana FROM PUBLIC".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS grafana.org_roles (
               role_name  TEXT PRIMARY KEY,
               org_id     TEXT NOT NULL REFERENCES {base}.orgs (id),
               created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ),
        "REVOKE ALL ON grafana.org_roles FROM PUBLIC".to_owned(),
    ];
    sql.extend(functions_sql(cfg));
    for rel in relations() {
        sql.push(format!("DROP VIEW IF EXISTS grafana.{}", ident(rel)));
        sql.push(view_sql(rel, &base));
    }
    sql
}

/// Grants of one mapped role: the schema, the views, the functions.
fn grants_sql(role: &str) -> Vec<String> {
    let r = ident(role);
    let views: Vec<String> = relations()
        .iter()
        .map(|v| format!("grafana.{}", ident(v)))
        .collect();
    vec![
        format!("GRANT USAGE ON SCHEMA grafana TO {r}"),
        format!("GRANT SELECT ON {} TO {r}", views.join(", ")),
        format!(
            "GRANT EXECUTE ON FUNCTION grafana.hist_add(int8[], int8[]), grafana.hist_sum(int8[]),
             grafana.hist_quantile(int8[], float8), grafana.level_for(timestamptz, timestamptz) TO {r}"
        ),
    ]
}

async fn exec(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("grafana set-up: {}", sql.lines().next().unwrap_or(sql)))?;
    Ok(())
}

/// (Re)create the schema, its mapping table, functions and views over the
/// base relations in the connection's current schema, then grant every
/// mapped role that exists again. Inside the caller's transaction.
async fn setup_in(conn: &mut PgConnection, cfg: &StorageConfig) -> anyhow::Result<()> {
    let base: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await?;
    for sql in setup_sql(&base, cfg) {
        exec(conn, &sql).await?;
    }
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT m.role_name FROM grafana.org_roles m
         WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = m.role_name)
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in roles {
        for sql in grants_sql(&r) {
            exec(conn, &sql).await?;
        }
    }
    Ok(())
}

/// (Re)create the views and grant the mapped roles again (after a
/// `projections rebuild`, which drops them with the relations).
pub async fn setup(pool: &PgPool, cfg: &StorageConfig) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    setup_in(&mut tx, cfg).await?;
    tx.commit().await?;
    Ok(())
}

/// `admin grafana-role`: [`grant_role`] with the password from the
/// environment variable `password_env`, or one generated for a new role;
/// prints `AGENTOPS_GRAFANA_PG_USER=` and, when generated,
/// `AGENTOPS_GRAFANA_PG_PASSWORD=` (the variables of
/// `deploy/grafana/provisioning/datasources/agentops.yaml`).
pub async fn grafana_role_cli(
    pool: &PgPool,
    cfg: &StorageConfig,
    org: &str,
    role: &str,
    password_env: Option<&str>,
) -> anyhow::Result<()> {
    let given = match password_env {
        Some(var) => {
            let p =
                std::env::var(var).with_context(|| format!("--password-env: ${var} is not set"))?;
            if p.chars().count() < 12 || p.chars().any(char::is_control) {
                bail!("the password: at least 12 characters, no control characters");
            }
            Some(p)
        }
        None => None,
    };
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(pool)
            .await?;
    let generated = (given.is_none() && !exists)
        .then(|| agentops_tenancy::sessions::random_token()[..32].to_owned());
    let password = given.as_deref().or(generated.as_deref());
    let done = grant_role(pool, cfg, org, role, password).await?;
    println!("AGENTOPS_GRAFANA_PG_USER={role}");
    if let Some(p) = generated.filter(|_| done.created) {
        println!("AGENTOPS_GRAFANA_PG_PASSWORD={p}");
    }
    if !done.created && !done.password_set {
        eprintln!("role {role} already exists: its password is unchanged");
    }
    Ok(())
}

/// What [`grant_role`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The role did not exist before.
    pub created: bool,
    /// The password was set (given, or generated for a new role).
    pub password_set: bool,
}

/// Set up the views ([`setup`]) and give `role` read access to `org`'s rows
/// through them: the role is created (`LOGIN`, no other privilege) unless it
/// exists, mapped to the org, granted the schema, the views and the
/// functions, and set read-only (`default_transaction_read_only`, a 30 s
/// `statement_timeout`, `search_path` `grafana`, in this database). Its
/// password is set to `password` when given; a new role without one gets
/// no password (the caller generates one). A role mapped to another org, a
/// role with more than `LOGIN` (superuser, createrole, createdb,
/// replication, bypassrls) and the role running this are refused.
pub async fn grant_role(
    pool: &PgPool,
    cfg: &StorageConfig,
    org: &str,
    role: &str,
    password: Option<&str>,
) -> anyhow::Result<Granted> {
    if !valid_role_name(role) {
        bail!(
            "--role {role:?}: expected 1 to 63 characters of a-z, 0-9, `_`, starting with a letter \
             or `_`, not `pg_`"
        );
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM orgs WHERE id = $1")
        .bind(org)
        .fetch_optional(&mut *tx)
        .await?;
    if known.is_none() {
        bail!("no org {org:?}");
    }
    let me: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await?;
    if me == role {
        bail!("--role {role:?} is the role running this command");
    }
    type Attrs = (bool, bool, bool, bool, bool);
    let existing: Option<Attrs> = sqlx::query_as(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(role)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((su, cr, cd, rep, bypass)) = existing {
        let member: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member
                            WHERE r.rolname = $1)",
        )
        .bind(role)
        .fetch_one(&mut *tx)
        .await?;
        if su || cr || cd || rep || bypass || member {
            bail!(
                "role {role:?} exists with more than LOGIN (superuser, createrole, createdb, \
                 replication, bypassrls or membership of another role): use another name"
            );
        }
    }
    setup_in(&mut tx, cfg).await?;
    let mapped: Option<String> =
        sqlx::query_scalar("SELECT org_id FROM grafana.org_roles WHERE role_name = $1")
            .bind(role)
            .fetch_optional(&mut *tx)
            .await?;
    match mapped.as_deref() {
        Some(o) if o != org => bail!("role {role:?} already reads org {o:?}"),
        Some(_) => {}
        None => {
            sqlx::query("INSERT INTO grafana.org_roles (role_name, org_id) VALUES ($1, $2)")
                .bind(role)
                .bind(org)
                .execute(&mut *tx)
                .await?;
        }
    }
    let r = ident(role);
    // The other attributes default to NO and were checked on an existing
    // role (naming them needs superuser on recent versions).
    let attrs = "LOGIN NOINHERIT CONNECTION LIMIT 20";
    if existing.is_none() {
        exec(&mut tx, &format!("CREATE ROLE {r} {attrs}")).await?;
    } else {
        exec(&mut tx, &format!("ALTER ROLE {r} {attrs}")).await?;
    }
    if let Some(p) = password {
        exec(&mut tx, &format!("ALTER ROLE {r} PASSWORD {}", literal(p))).await?;
    }
    let db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *tx)
        .await?;
    for setting in [
        "default_transaction_read_only = on",
        "statement_timeout = '30s'",
        "search_path = grafana",
    ] {
        exec(
            &mut tx,
            &format!("ALTER ROLE {r} IN DATABASE {} SET {setting}", ident(&db)),
        )
        .await?;
    }
    for sql in grants_sql(role) {
        exec(&mut tx, &sql).await?;
    }
    tx.commit().await?;
    Ok(Granted {
        created: existing.is_none(),
        password_set: password.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_need_no_quoting() {
        for ok in ["grafana_acme", "_g", "g1"] {
            assert!(valid_role_name(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "1g",
            "Grafana",
            "g-a",
            "pg_read",
            "g a",
            "g\"",
            long.as_str(),
        ] {
            assert!(!valid_role_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_view_filters_by_the_mapped_org_behind_a_barrier() {
        let sql = setup_sql("public", &StorageConfig::default());
        for rel in relations() {
            let view = sql
                .iter()
                .find(|s| s.starts_with(&format!("CREATE VIEW grafana.\"{rel}\" ")))
                .unwrap_or_else(|| panic!("no view of {rel}"));
            assert!(view.contains("WITH (security_barrier)"), "{view}");
            assert!(
                view.ends_with(&format!("= {ORG_OF_CURRENT_USER}")),
                "{view}"
            );
            assert!(view.contains("FROM \"public\"."), "{view}");
        }
        let agg = sql
            .iter()
            .find(|s| s.starts_with("CREATE VIEW grafana.\"agg_org_1h\""))
            .unwrap();
        assert!(agg.contains("COALESCE(r.lat_b79, 0)]::int8[] AS lat_hist"));
        let runs = sql
            .iter()
            .find(|s| s.starts_with("CREATE VIEW grafana.\"runs\""))
            .unwrap();
        assert!(!runs.contains("lat_hist"));
        assert_eq!(literal("a'b"), "'a''b'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn level_for_follows_the_retention() {
        let f = functions_sql(&StorageConfig {
            minute_retention_days: 35,
            hour_retention_days: 0,
            ..StorageConfig::default()
        });
        let level = f.iter().find(|s| s.contains("level_for")).unwrap();
        assert!(level.contains("interval '6 hours' AND f >= now() - interval '34 days'"));
        assert!(level.contains("OR NOT (true)"), "{level}");
    }
}
