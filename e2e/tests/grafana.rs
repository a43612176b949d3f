//! Grafana provisioning (`deploy/grafana/`) and the per-org read-only role
//! (`agentops-query-api admin grafana-role`, `agentops_query_api::grafana`).
//!
//! The dashboards are read from their files: each is checked as a Grafana
//! model (uid, title, panels with ids and grid positions, data sources by
//! the provisioned uid), then every panel query and template-variable query
//! is expanded as Grafana does (variables with their first value, then the
//! PostgreSQL data source's macros over a time range) and run, as an org's
//! Grafana role, on a database of each storage mode holding two orgs'
//! events written through the projection writer, over ranges that pick each
//! aggregate level. A panel reading a column or relation that does not
//! exist fails here, and so does a result that does not fit its panel type.
//! Then each role reads only its org's rows in every view and is refused
//! every other relation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentops_e2e::events::{enriched_event as event, enriched_runs as runs};
use agentops_e2e::{create_database, timescale_url};
use agentops_projections::Writer;
use agentops_query_api::grafana;
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::storage::{self, Mode, ModeChoice, StorageConfig};
use agentops_schemas::{histogram, AgentEvent};
use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Column, Connection, PgConnection, PgPool, Postgres, Row, TypeInfo, ValueRef};

const DS_UID: &str = "agentops-pg";
const DS_TYPE: &str = "grafana-postgresql-datasource";
const PANEL_TYPES: [&str; 3] = ["timeseries", "stat", "table"];

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana")
}

// ---------------------------------------------------------------------------
// Files: provisioning and dashboard models.

struct Dashboard {
    file: String,
    model: Value,
}

impl Dashboard {
    fn panels(&self) -> &[Value] {
        self.model["panels"].as_array().map_or(&[], Vec::as_slice)
    }

    fn variables(&self) -> &[Value] {
        self.model["templating"]["list"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }
}

fn dashboards() -> Result<Vec<Dashboard>> {
    let dir = grafana_dir().join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let model: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        out.push(Dashboard {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            model,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

fn yaml(rel: &str) -> Result<serde_yaml::Value> {
    let path = grafana_dir().join(rel);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_yaml::from_str(&text).with_context(|| format!("{rel} is not YAML"))
}

/// The provisioned data source: its uid, and the value of its
/// `timescaledb` flag (checked to be a YAML boolean: Grafana's
/// PostgreSQL plugin refuses a string there, which is what an environment
/// variable would give).
fn provisioned_datasource() -> Result<(String, bool)> {
    let ds = yaml("provisioning/datasources/agentops.yaml")?;
    ensure!(
        ds["apiVersion"].as_i64() == Some(1),
        "datasources apiVersion"
    );
    let list = ds["datasources"].as_sequence().context("datasources")?;
    ensure!(list.len() == 1, "one data source, got {}", list.len());
    let d = &list[0];
    let uid = d["uid"].as_str().context("datasource uid")?.to_owned();
    ensure!(d["type"].as_str() == Some(DS_TYPE), "type {:?}", d["type"]);
    // Connection settings come from the environment.
    for (field, var) in [
        (&d["url"], "AGENTOPS_GRAFANA_PG_HOST"),
        (&d["user"], "AGENTOPS_GRAFANA_PG_USER"),
        (&d["jsonData"]["database"], "AGENTOPS_GRAFANA_PG_DATABASE"),
        (&d["jsonData"]["sslmode"], "AGENTOPS_GRAFANA_PG_SSLMODE"),
        (
            &d["secureJsonData"]["password"],
            "AGENTOPS_GRAFANA_PG_PASSWORD",
        ),
    ] {
        ensure!(
            field.as_str() == Some(&format!("${{{var}}}")),
            "{var}: {field:?}"
        );
    }
    let timescaledb = d["jsonData"]["timescaledb"]
        .as_bool()
        .context("jsonData.timescaledb must be a YAML boolean")?;
    let providers = yaml("provisioning/dashboards/agentops.yaml")?;
    let p = &providers["providers"][0];
    ensure!(p["type"].as_str() == Some("file"), "provider type");
    ensure!(
        p["options"]["path"].as_str().is_some_and(|s| !s.is_empty()),
        "provider path"
    );
    Ok((uid, timescaledb))
}

fn datasource_is(v: &Value, uid: &str) -> bool {
    v["uid"].as_str() == Some(uid) && v["type"].as_str() == Some(DS_TYPE)
}

/// Each dashboard is a Grafana model whose queries go to the provisioned
/// data source.
fn check_model(d: &Dashboard, uid: &str, uids: &mut BTreeSet<String>) -> Result<()> {
    let m = &d.model;
    let f = &d.file;
    let duid = m["uid"].as_str().context(format!("{f}: uid"))?;
    ensure!(
        !duid.is_empty() && duid.len() <= 40,
        "{f}: uid {duid:?} (1 to 40 characters)"
    );
    ensure!(uids.insert(duid.to_owned()), "{f}: uid {duid} twice");
    ensure!(
        m["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{f}: title"
    );
    ensure!(
        m["schemaVersion"].as_i64().is_some_and(|v| v >= 39),
        "{f}: schemaVersion {:?}",
        m["schemaVersion"]
    );
    ensure!(m["time"]["from"].is_string() && m["time"]["to"].is_string());
    ensure!(!d.panels().is_empty(), "{f}: no panels");
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for p in d.panels() {
        let title = p["title"].as_str().context(format!("{f}: a panel title"))?;
        let id = p["id"].as_i64().context(format!("{f}: {title}: id"))?;
        ensure!(ids.insert(id), "{f}: panel id {id} twice");
        let kind = p["type"].as_str().unwrap_or_default();
        ensure!(PANEL_TYPES.contains(&kind), "{f}: {title}: type {kind:?}");
        let g = &p["gridPos"];
        let pos: Vec<i64> = ["x", "y", "w", "h"]
            .iter()
            .map(|k| g[k].as_i64().unwrap_or(-1))
            .collect();
        let (x, y, w, h) = (pos[0], pos[1], pos[2], pos[3]);
        ensure!(
            x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24,
            "{f}: {title}: gridPos {g}"
        );
        // No two panels on the same grid cell.
        for cx in x..x + w {
            for cy in y..y + h {
                ensure!(cells.insert((cx, cy)), "{f}: {title} overlaps a panel");
            }
        }
        ensure!(
            datasource_is(&p["datasource"], uid),
            "{f}: {title}: datasource {}",
            p["datasource"]
        );
        let targets = p["targets"].as_array().context(format!("{f}: {title}"))?;
        ensure!(!targets.is_empty(), "{f}: {title}: no query");
        for t in targets {
            ensure!(
                datasource_is(&t["datasource"], uid),
                "{f}: {title}: target datasource"
            );
            ensure!(t["refId"].is_string() && t["rawQuery"] == Value::Bool(true));
            let want = if kind == "timeseries" {
                "time_series"
            } else {
                "table"
            };
            ensure!(
                t["format"].as_str() == Some(want),
                "{f}: {title}: format {}",
                t["format"]
            );
            ensure!(
                t["rawSql"].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{f}: {title}: rawSql"
            );
        }
    }
    for v in d.variables() {
        let name = v["name"].as_str().context(format!("{f}: variable name"))?;
        ensure!(v["type"].as_str() == Some("query"), "{f}: ${name}: type");
        ensure!(
            datasource_is(&v["datasource"], uid),
            "{f}: ${name}: datasource"
        );
        ensure!(v["query"].is_string(), "{f}: ${name}: query");
    }
    Ok(())
}

#[test]
fn dashboards_and_provisioning_are_grafana_models() -> Result<()> {
    let (uid, _) = provisioned_datasource()?;
    ensure!(uid == DS_UID, "provisioned uid {uid}");
    let all = dashboards()?;
    let files: Vec<&str> = all.iter().map(|d| d.file.as_str()).collect();
    ensure!(
        files
            == [
                "agent-detail.json",
                "budgets.json",
                "cost.json",
                "errors-latency.json",
                "fleet-overview.json"
            ],
        "{files:?}"
    );
    let mut uids = BTreeSet::new();
    for d in &all {
        check_model(d, &uid, &mut uids)?;
    }
    // The agent page is driven by $org and $agent.
    let agent = all.iter().find(|d| d.file == "agent-detail.json").unwrap();
    let names: Vec<&str> = agent
        .variables()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    ensure!(names == ["org", "agent"], "{names:?}");
    // No dashboard scans the raw events.
    for d in &all {
        for (title, sql) in queries(d) {
            ensure!(
                !sql.contains("grafana.events") && !sql.contains("public."),
                "{}: {title} reads events",
                d.file
            );
            ensure!(
                sql.contains("grafana."),
                "{}: {title} reads outside schema grafana",
                d.file
            );
        }
    }
    Ok(())
}

/// Every panel query of a dashboard, with its panel's title.
fn queries(d: &Dashboard) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d.panels() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_owned(),
                t["rawSql"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Expansion as Grafana does it: template variables (the frontend's
// `templateSrv.replace` with the SQL data sources' `interpolateVariable`:
// a single value has its quotes doubled and is not quoted), then the
// PostgreSQL data source's macros (pkg/tsdb/grafana-postgresql-datasource/
// macros.go).

/// A time as Go's `time.RFC3339Nano` prints it in UTC: trailing zeros of
/// the fraction dropped, no fraction for a whole second.
fn go_rfc3339nano(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Grafana's interval syntax (`gtime.ParseInterval`) in seconds: a number and
/// one of ms, s, m, h, d, w.
fn interval_secs(text: &str) -> Result<f64> {
    let t = text.trim().trim_matches('\'');
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("interval {text:?}"))?;
    let mul = match unit {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 604800.0,
        _ => bail!("interval {text:?}"),
    };
    Ok(n * mul)
}

/// Go's `%v` of a float64 as Grafana prints the interval's seconds.
fn go_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn macro_(
    name: &str,
    args: &[String],
    r: &Range,
    timescaledb: bool,
    alias: bool,
) -> Result<String> {
    let arg0 = || {
        args.first()
            .filter(|a| !a.is_empty())
            .with_context(|| format!("missing time column argument for macro {name}"))
    };
    let (from, to) = (go_rfc3339nano(r.from), go_rfc3339nano(r.to));
    Ok(match name {
        "__time" => format!("{} AS \"time\"", arg0()?),
        "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", arg0()?),
        "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", arg0()?),
        "__timeFrom" => format!("'{from}'"),
        "__timeTo" => format!("'{to}'"),
        "__timeGroup" | "__timeGroupAlias" => {
            ensure!(
                args.len() >= 2,
                "macro {name} needs a column and an interval"
            );
            let secs = interval_secs(&args[1])?;
            let g = if timescaledb {
                format!("time_bucket('{secs:.3}s',{})", args[0])
            } else {
                let s = go_float(secs);
                format!("floor(extract(epoch from {})/{s})*{s}", args[0])
            };
            if name == "__timeGroupAlias" || alias {
                format!("{g} AS \"time\"")
            } else {
                g
            }
        }
        "__unixEpochFilter" => format!(
            "{0} >= {1} AND {0} <= {2}",
            arg0()?,
            r.from.timestamp(),
            r.to.timestamp()
        ),
        _ => bail!("unknown macro {name:?}"),
    })
}

/// The backend's macro pass: every `$name(args)`.
fn expand_macros(sql: &str, r: &Range, timescaledb: bool) -> Result<String> {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let tail = &after[name_len..];
        if name.is_empty() || !tail.starts_with('(') {
            out.push('$');
            rest = after;
            continue;
        }
        let close = tail.find(')').context("unclosed macro")?;
        let args: Vec<String> = tail[1..close]
            .split(',')
            .map(|a| a.trim().to_owned())
            .collect();
        let next = &tail[close + 1..];
        // `$__timeGroup(...)` directly followed by a comma takes `AS "time"`
        // (Grafana's pre-5.3 compatibility).
        let alias = name == "__timeGroup" && next.starts_with(',');
        out.push_str(&macro_(name, &args, r, timescaledb, alias)?);
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

/// The frontend's variable pass: `$name`, `${name}`, `${name:format}` and
/// `[[name]]` of the dashboard's variables; others are left as they are.
fn expand_variables(sql: &str, vars: &BTreeMap<String, String>) -> String {
    let value = |name: &str| vars.get(name).map(|v| v.replace('\'', "''"));
    let mut out = String::new();
    let mut rest = sql;
    loop {
        let next = [rest.find('$'), rest.find("[[")]
            .into_iter()
            .flatten()
            .min();
        let Some(i) = next else { break };
        out.push_str(&rest[..i]);
        let s = &rest[i..];
        let word = |t: &str| {
            let n = t
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(t.len());
            t[..n].to_owned()
        };
        let (name, len) = if let Some(t) = s.strip_prefix("${") {
            match t.find('}') {
                Some(end) => {
                    let inner = &t[..end];
                    (inner.split(':').next().unwrap_or("").to_owned(), end + 3)
                }
                None => (String::new(), 0),
            }
        } else if let Some(t) = s.strip_prefix("[[") {
            match t.find("]]") {
                Some(end) => (t[..end].split(':').next().unwrap_or("").to_owned(), end + 4),
                None => (String::new(), 0),
            }
        } else {
            let w = word(&s[1..]);
            let l = w.len() + 1;
            (w, l)
        };
        match value(&name) {
            Some(v) if len > 0 => {
                out.push_str(&v);
                rest = &s[len..];
            }
            _ => {
                let skip = if s.starts_with("[[") { 2 } else { 1 };
                out.push_str(&s[..skip]);
                rest = &s[skip..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn expand(
    sql: &str,
    vars: &BTreeMap<String, String>,
    r: &Range,
    timescaledb: bool,
) -> Result<String> {
    let sql = expand_macros(&expand_variables(sql, vars), r, timescaledb)?;
    ensure!(
        !sql.contains('$'),
        "left unexpanded (an unknown variable or macro): {sql}"
    );
    Ok(sql)
}

#[test]
fn expansion_matches_grafana() -> Result<()> {
    let r = Range {
        from: "2026-11-22T10:00:00Z".parse()?,
        to: "2026-11-22T16:30:00.120Z".parse()?,
    };
    let vars = BTreeMap::from([
        ("org".to_owned(), "o'1".to_owned()),
        ("agent".to_owned(), "a-1".to_owned()),
    ]);
    let got = expand(
        "SELECT $__timeGroupAlias(bucket, 1h), $__timeGroup(bucket, '5m') x FROM t \
         WHERE $__timeFilter(bucket) AND org_id = '$org' AND a = '${agent}' AND b = '[[agent]]' \
         AND f = $__timeFrom() AND g = $__timeTo()",
        &vars,
        &r,
        false,
    )?;
    ensure!(
        got == "SELECT floor(extract(epoch from bucket)/3600)*3600 AS \"time\", \
                floor(extract(epoch from bucket)/300)*300 x FROM t \
                WHERE bucket BETWEEN '2026-11-22T10:00:00Z' AND '2026-11-22T16:30:00.12Z' \
                AND org_id = 'o''1' AND a = 'a-1' AND b = 'a-1' \
                AND f = '2026-11-22T10:00:00Z' AND g = '2026-11-22T16:30:00.12Z'",
        "{got}"
    );
    let ts = expand("$__timeGroup(bucket, 1d), 1", &vars, &r, true)?;
    ensure!(
        ts == "time_bucket('86400.000s',bucket) AS \"time\", 1",
        "{ts}"
    );
    ensure!(expand("$__nope(x)", &vars, &r, false).is_err());
    ensure!(expand("SELECT '$unknown'", &vars, &r, false).is_err());
    Ok(())
}

// ---------------------------------------------------------------------------
// Running panels as a role.

/// A connection reading as an org's Grafana role: a login of its own
/// (plain PostgreSQL), or the one PGlite connection under `SET ROLE` (the
/// PGlite server serves one client and only as user postgres; privileges
/// are checked against the role all the same).
struct Reader {
    conn: ReaderConn,
    role: String,
}

enum ReaderConn {
    Login(PgConnection),
    SetRole(PoolConnection<Postgres>),
}

impl Reader {
    async fn open(
        pool: &PgPool,
        url: &str,
        role: &str,
        password: &str,
        login: bool,
    ) -> Result<Self> {
        let conn = if login {
            let mut u = reqwest::Url::parse(url)?;
            u.set_username(role).map_err(|_| anyhow::anyhow!("url"))?;
            u.set_password(Some(password))
                .map_err(|_| anyhow::anyhow!("url"))?;
            ReaderConn::Login(PgConnection::connect(u.as_str()).await?)
        } else {
            let mut c = pool.acquire().await?;
            sqlx::raw_sql(&format!("SET ROLE {role}"))
                .execute(&mut *c)
                .await?;
            ReaderConn::SetRole(c)
        };
        let mut r = Reader {
            conn,
            role: role.to_owned(),
        };
        let me: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(r.c())
            .await?;
        ensure!(me == role, "reading as {me}, not {role}");
        Ok(r)
    }

    fn c(&mut self) -> &mut PgConnection {
        match &mut self.conn {
            ReaderConn::Login(c) => c,
            ReaderConn::SetRole(c) => c,
        }
    }

    async fn rows(&mut self, sql: &str) -> Result<Vec<PgRow>> {
        Ok(sqlx::query(sql).fetch_all(self.c()).await?)
    }

    /// The SQLSTATE of `sql`'s error (`None`: it succeeded).
    async fn error_code(&mut self, sql: &str) -> Option<String> {
        match sqlx::raw_sql(sql).execute(self.c()).await {
            Ok(_) => None,
            Err(e) => Some(
                e.as_database_error()
                    .and_then(|d| d.code())
                    .map_or_else(|| format!("{e}"), |c| c.into_owned()),
            ),
        }
    }

    async fn close(self) -> Result<()> {
        match self.conn {
            ReaderConn::Login(c) => c.close().await?,
            ReaderConn::SetRole(mut c) => {
                sqlx::raw_sql("RESET ROLE").execute(&mut *c).await?;
            }
        }
        Ok(())
    }
}

fn type_name(row: &PgRow, i: usize) -> String {
    row.columns()[i].type_info().name().to_owned()
}

fn is_numeric(ty: &str) -> bool {
    matches!(
        ty,
        "FLOAT8" | "FLOAT4" | "INT8" | "INT4" | "INT2" | "NUMERIC"
    )
}

fn is_text(ty: &str) -> bool {
    matches!(ty, "TEXT" | "VARCHAR" | "NAME" | "BPCHAR")
}

fn is_null(row: &PgRow, i: usize) -> bool {
    row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true)
}

/// The text cells of a result (to look for another org's names).
fn text_cells(rows: &[PgRow]) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        for i in 0..row.columns().len() {
            if is_text(&type_name(row, i)) {
                if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The result fits the panel: a time series has a `time` column of
/// timestamptz in ascending order, numeric value columns and at most a text
/// `metric` column (Grafana's long format, one series per value); a stat
/// one row of one non-NULL number; a table named columns. Every panel has
/// rows (data was seeded for every one).
fn check_result(kind: &str, rows: &[PgRow]) -> Result<()> {
    ensure!(!rows.is_empty(), "no rows");
    let row = &rows[0];
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    let mut unique = BTreeSet::new();
    for n in &names {
        ensure!(
            !n.is_empty() && *n != "?column?" && unique.insert(*n),
            "columns must be named, once each: {names:?}"
        );
    }
    match kind {
        "timeseries" => {
            let t = names
                .iter()
                .position(|n| *n == "time")
                .with_context(|| format!("no `time` column: {names:?}"))?;
            ensure!(
                type_name(row, t) == "TIMESTAMPTZ",
                "`time` is {}",
                type_name(row, t)
            );
            let mut values = 0;
            for (i, n) in names.iter().enumerate() {
                let ty = type_name(row, i);
                if i == t {
                    continue;
                } else if *n == "metric" {
                    ensure!(is_text(&ty), "`metric` is {ty}");
                } else {
                    ensure!(is_numeric(&ty), "column {n} is {ty}, not a number");
                    values += 1;
                }
            }
            ensure!(values > 0, "no value column: {names:?}");
            let times: Vec<DateTime<Utc>> = rows
                .iter()
                .map(|r| r.try_get::<DateTime<Utc>, _>(t))
                .collect::<std::result::Result<_, _>>()?;
            ensure!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "`time` is not ascending"
            );
        }
        "stat" => {
            ensure!(
                rows.len() == 1 && names.len() == 1,
                "a stat takes one row of one column: {} rows, {names:?}",
                rows.len()
            );
            let ty = type_name(row, 0);
            ensure!(is_numeric(&ty), "{} is {ty}, not a number", names[0]);
            ensure!(!is_null(row, 0), "{} is NULL", names[0]);
        }
        "table" => {}
        other => bail!("panel type {other}"),
    }
    Ok(())
}

/// The dashboards' ranges: each picks a level (`grafana.level_for`).
fn ranges(now: DateTime<Utc>) -> Vec<(&'static str, Range, &'static str)> {
    [
        ("3h", Span::hours(3), "minute"),
        ("24h", Span::hours(24), "hour"),
        ("7d", Span::days(7), "hour"),
        ("90d", Span::days(90), "day"),
    ]
    .into_iter()
    .map(|(name, span, level)| {
        (
            name,
            Range {
                from: now - span,
                to: now,
            },
            level,
        )
    })
    .collect()
}

/// Every variable and panel query of every dashboard, as `reader` over
/// each range; returns the numbers of the stats by `dashboard/title/range`.
async fn run_dashboards(
    reader: &mut Reader,
    org: &str,
    other_prefix: &str,
    timescaledb: bool,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, f64>> {
    let mut stats = BTreeMap::new();
    let mut ran = 0;
    for (range_name, r, level) in ranges(now) {
        let picked: String = sqlx::query_scalar(&expand(
            "SELECT grafana.level_for($__timeFrom(), $__timeTo())",
            &BTreeMap::new(),
            &r,
            timescaledb,
        )?)
        .fetch_one(reader.c())
        .await?;
        ensure!(
            picked == level,
            "{range_name}: level {picked}, expected {level}"
        );
        for d in dashboards()? {
            // Variables in order, each with its first value (what Grafana
            // selects when nothing is chosen yet).
            let mut vars = BTreeMap::new();
            for v in d.variables() {
                let name = v["name"].as_str().unwrap_or_default().to_owned();
                let sql = expand(
                    v["query"].as_str().unwrap_or_default(),
                    &vars,
                    &r,
                    timescaledb,
                )?;
                let rows = reader
                    .rows(&sql)
                    .await
                    .with_context(|| format!("{}: ${name}: {sql}", d.file))?;
                let first: String = rows
                    .first()
                    .with_context(|| format!("{}: ${name} has no value", d.file))?
                    .try_get(0)?;
                vars.insert(name, first);
            }
            if let Some(o) = vars.get("org") {
                ensure!(o == org, "{}: $org is {o} for a role of {org}", d.file);
            }
            for p in d.panels() {
                let title = p["title"].as_str().unwrap_or("?");
                let kind = p["type"].as_str().unwrap_or("?");
                for t in p["targets"].as_array().into_iter().flatten() {
                    let what = format!("{} / {title} / {range_name}", d.file);
                    let sql = expand(
                        t["rawSql"].as_str().unwrap_or_default(),
                        &vars,
                        &r,
                        timescaledb,
                    )
                    .with_context(|| what.clone())?;
                    let rows = reader
                        .rows(&sql)
                        .await
                        .with_context(|| format!("{what}: {sql}"))?;
                    check_result(kind, &rows).with_context(|| format!("{what}: {sql}"))?;
                    for cell in text_cells(&rows) {
                        ensure!(
                            !cell.starts_with(other_prefix),
                            "{what}: another org's {cell:?} read as {}",
                            reader.role
                        );
                    }
                    if kind == "stat" {
                        let v: f64 = rows[0].try_get(0).with_context(|| what.clone())?;
                        stats.insert(format!("{}/{title}/{range_name}", d.file), v);
                    }
                    ran += 1;
                }
            }
        }
    }
    ensure!(ran > 100, "only {ran} queries ran");
    Ok(stats)
}

// ---------------------------------------------------------------------------
// The suite, on each storage mode.

#[tokio::test]
async fn grafana_plain_postgres() -> Result<()> {
    let url = create_database("grafana_pg").await?;
    suite(&url, ModeChoice::Postgres, Mode::Postgres).await
}

#[tokio::test]
async fn grafana_timescaledb() -> Result<()> {
    let url = timescale_url()?;
    suite(&url, ModeChoice::Auto, Mode::Timescaledb).await
}

/// One org's seeded history: recent runs (an hour of them, ending an hour
/// ago), runs three days ago, an unpriced call, `team` attributes on
/// everything; agents named `{prefix}agent-N`.
fn history(org: &str, prefix: &str, now: DateTime<Utc>, n: usize) -> Vec<AgentEvent> {
    let start = now - Span::hours(2);
    let mut evs = runs(org, &format!("{prefix}r"), n, start, Span::seconds(90));
    evs.extend(runs(
        org,
        &format!("{prefix}old"),
        10,
        now - Span::days(3),
        Span::minutes(7),
    ));
    let mut unpriced = event(
        org,
        "llm_call",
        "agent-1",
        &format!("{prefix}r-1"),
        start + Span::seconds(95),
    );
    unpriced.input_tokens = Some(50);
    unpriced.provider = Some("acme".into());
    unpriced.model = Some("mystery-model".into());
    evs.push(unpriced);
    for (i, e) in evs.iter_mut().enumerate() {
        e.agent_id = format!("{prefix}{}", e.agent_id);
        let team = ["payments", "search"][i % 2];
        e.attributes
            .insert("team".into(), format!("{prefix}{team}"));
    }
    evs
}

/// Budgets, an agent control and alerts of `org` (configuration rows the
/// budgets dashboard reads).
async fn governance_rows(pool: &PgPool, org: &str, prefix: &str) -> Result<()> {
    let budgets: [(&str, &str, Option<String>, &str, f64); 5] = [
        ("whole org", "org", None, "day", 0.5),
        (
            "agent 0",
            "agent",
            Some(format!("{prefix}agent-0")),
            "week",
            100.0,
        ),
        ("workflow a", "workflow", Some("wf-a".into()), "month", 1.0),
        ("gpt-4o", "model", Some("gpt-4o".into()), "day", 5.0),
        (
            "payments",
            "tag",
            Some(format!("team={prefix}payments")),
            "month",
            2.0,
        ),
    ];
    for (name, kind, value, period, limit) in budgets {
        sqlx::query(
            "INSERT INTO budgets (org_id, name, scope_kind, scope_value, period, limit_usd)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(org)
        .bind(name)
        .bind(kind)
        .bind(value)
        .bind(period)
        .bind(limit)
        .execute(pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO agent_controls (org_id, agent_id, action, reason, set_by)
         VALUES ($1, $2, 'pause', 'budget reached', 'budget:whole org')",
    )
    .bind(org)
    .bind(format!("{prefix}agent-1"))
    .execute(pool)
    .await?;
    for (i, state) in ["firing", "resolved"].iter().enumerate() {
        sqlx::query(
            "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message, state)
             VALUES ($1, $2, 'budget', 'day', 100, 120, $3, $4)",
        )
        .bind(format!("{org}:{i}"))
        .bind(org)
        .bind(format!("{prefix}spend over the day budget"))
        .bind(state)
        .execute(pool)
        .await?;
    }
    Ok(())
}

fn latency_hist(events: &[AgentEvent]) -> Vec<i64> {
    let mut h = vec![0i64; histogram::BUCKETS];
    for e in events {
        if matches!(e.event_type.as_str(), "run_completed" | "run_failed") {
            h[histogram::bucket_of(e.latency_ms.unwrap_or(0))] += 1;
        }
    }
    h
}

/// `admin grafana-role` through the binary (plain mode: the PGlite server
/// serves one connection, which the test holds).
fn grafana_role_cli(url: &str, args: &[&str], password: &str) -> Result<(bool, String, String)> {
    let dir = std::env::var("AGENTOPS_BIN_DIR")
        .unwrap_or_else(|_| format!("{}/../target/debug", env!("CARGO_MANIFEST_DIR")));
    let out = std::process::Command::new(format!("{dir}/agentops-query-api"))
        .args(["admin", "grafana-role"])
        .args(args)
        .env("AGENTOPS_DATABASE__URL", url)
        .env("AGENTOPS_DATABASE__STORAGE__MODE", "postgres")
        .env("GRAFANA_PW", password)
        .output()
        .context("run agentops-query-api (cargo build -p agentops-query-api --bins)")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

struct Org {
    id: String,
    prefix: &'static str,
    role: String,
    password: String,
}

async fn suite(url: &str, choice: ModeChoice, expect: Mode) -> Result<()> {
    let db = DatabaseConfig {
        url: url.into(),
        // The PGlite server runs one query at a time.
        max_connections: 1,
        statement_timeout_ms: None,
        storage: StorageConfig {
            mode: choice,
            ..Default::default()
        },
    };
    let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    {
        // Start from nothing (the PGlite server is shared by the whole run).
        let mut conn = pool.acquire().await?;
        storage::drop_all(&mut conn).await?;
    }
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    ensure!(mode == expect, "mode {mode:?}, expected {expect:?}");
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let orgs = [("a", "a-"), ("b", "b-")].map(|(name, prefix)| Org {
        id: format!("graf-{name}-{suffix}"),
        prefix,
        role: format!("grafana_{name}_{suffix}"),
        password: format!("pw-{name}-{suffix}-long-enough"),
    });
    let result = with_roles(&pool, url, &db, mode, &orgs).await;
    // Roles belong to the whole server: drop them whatever happened.
    let mut conn = pool.acquire().await?;
    let _ = sqlx::raw_sql("RESET ROLE").execute(&mut *conn).await;
    let roles = orgs
        .iter()
        .map(|o| o.role.clone())
        .chain([format!("{}_gen", orgs[0].role)]);
    for role in roles {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&mut *conn)
                .await?;
        if exists {
            sqlx::raw_sql(&format!(
                "DELETE FROM grafana.org_roles WHERE role_name = '{0}';
                 DROP OWNED BY {0}; DROP ROLE {0}",
                role
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    result
}

async fn with_roles(
    pool: &PgPool,
    url: &str,
    db: &DatabaseConfig,
    mode: Mode,
    orgs: &[Org; 2],
) -> Result<()> {
    let now = Utc::now().duration_trunc(Span::milliseconds(1))?;
    let mut writer = Writer::new(mode, "grafana");
    let mut seeded = BTreeMap::new();
    for (i, o) in orgs.iter().enumerate() {
        agentops_tenancy::create_org(pool, &o.id, "grafana").await?;
        let evs = history(&o.id, o.prefix, now, if i == 0 { 40 } else { 25 });
        let mut conn = pool.acquire().await?;
        writer
            .apply(&mut conn, &evs, &[("grafana".into(), 0, i as i64 + 1)])
            .await?;
        writer.settle(&mut conn).await?;
        drop(conn);
        governance_rows(pool, &o.id, o.prefix).await?;
        seeded.insert(o.id.clone(), evs);
    }
    if mode == Mode::Timescaledb {
        let mut conn = pool.acquire().await?;
        storage::refresh_all(&mut conn).await?;
    }

    // The roles: through the CLI on plain PostgreSQL, in-process on PGlite
    // (its one connection is this test's).
    let login = mode == Mode::Postgres;
    for o in orgs {
        if login {
            let args = [
                "--org",
                &o.id,
                "--role",
                &o.role,
                "--password-env",
                "GRAFANA_PW",
            ];
            let (ok, out, err) = grafana_role_cli(url, &args, &o.password)?;
            ensure!(ok, "grafana-role: {out} {err}");
            ensure!(
                out.trim() == format!("AGENTOPS_GRAFANA_PG_USER={}", o.role),
                "{out}"
            );
            // Idempotent.
            let (ok, out, err) = grafana_role_cli(url, &args, &o.password)?;
            ensure!(ok, "grafana-role again: {out} {err}");
        } else {
            let g =
                grafana::grant_role(pool, &db.storage, &o.id, &o.role, Some(&o.password)).await?;
            ensure!(g.created, "{g:?}");
            let again =
                grafana::grant_role(pool, &db.storage, &o.id, &o.role, Some(&o.password)).await?;
            ensure!(!again.created, "{again:?}");
        }
    }
    if login {
        // Without --password-env a new role gets a generated password,
        // printed once; an existing one keeps its own.
        let extra = format!("{}_gen", orgs[0].role);
        let args = ["--org", &orgs[0].id, "--role", &extra];
        let (ok, out, err) = grafana_role_cli(url, &args, "")?;
        ensure!(ok, "{out} {err}");
        let pw = out
            .lines()
            .find_map(|l| l.strip_prefix("AGENTOPS_GRAFANA_PG_PASSWORD="))
            .with_context(|| format!("no password printed: {out}"))?;
        ensure!(pw.len() == 32, "{out}");
        let (ok, again, err) = grafana_role_cli(url, &args, "")?;
        ensure!(
            ok && !again.contains("PASSWORD") && err.contains("unchanged"),
            "{again} {err}"
        );
    }
    // Every component sets storage up at start: the views do not stand in
    // its way (continuous-aggregate policies, partitions, column changes).
    ensure!(agentops_runtime::db::prepare(pool, db).await? == mode);
    // A role reads one org only; refused names.
    let err = grafana::grant_role(pool, &db.storage, &orgs[1].id, &orgs[0].role, None)
        .await
        .unwrap_err();
    ensure!(err.to_string().contains("already reads org"), "{err}");
    let err = grafana::grant_role(pool, &db.storage, "no-such-org", "grafana_x", None)
        .await
        .unwrap_err();
    ensure!(err.to_string().contains("no org"), "{err}");
    for bad in ["pg_monitor", "Grafana", "g-1"] {
        ensure!(
            grafana::grant_role(pool, &db.storage, &orgs[0].id, bad, None)
                .await
                .is_err()
        );
    }
    let me: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(pool)
        .await?;
    let err = grafana::grant_role(pool, &db.storage, &orgs[0].id, &me, None)
        .await
        .unwrap_err();
    ensure!(err.to_string().contains("running this command"), "{err}");

    // What each role may see: the admin's count of each relation's rows per org.
    let mut expected: BTreeMap<(String, &str), i64> = BTreeMap::new();
    for o in orgs {
        for rel in grafana::relations() {
            let key = if rel == "orgs" { "id" } else { "org_id" };
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM public.{rel} WHERE {key} = $1"
            ))
            .bind(&o.id)
            .fetch_one(pool)
            .await?;
            ensure!(n > 0, "nothing seeded in {rel} for {}", o.id);
            expected.insert((o.id.clone(), rel), n);
        }
    }
    // Every data-holding relation outside schema grafana (base tables,
    // partitions, continuous aggregates and their materializations, chunks),
    // extensions' catalogs aside.
    let others: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'grafana',
                                 '_timescaledb_catalog', '_timescaledb_config',
                                 'timescaledb_information', 'timescaledb_experimental',
                                 '_timescaledb_cache', '_timescaledb_functions', '_timescaledb_debug')
           AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
           -- An extension's own catalog (TimescaleDB's job statistics) holds no org data.
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                           AND d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    ensure!(others.len() > 30, "{others:?}");

    for (i, o) in orgs.iter().enumerate() {
        let other = &orgs[1 - i];
        let mut reader = Reader::open(pool, url, &o.role, &o.password, login).await?;
        let checked = async {
            if login {
                let ro: String = sqlx::query_scalar("SHOW default_transaction_read_only")
                    .fetch_one(reader.c())
                    .await?;
                ensure!(ro == "on", "default_transaction_read_only {ro}");
            }
            isolation(&mut reader, o, other, &expected, &others).await?;
            let stats = run_dashboards(
                &mut reader,
                &o.id,
                other.prefix,
                mode == Mode::Timescaledb,
                now,
            )
            .await?;
            // The percentiles merge the histograms as the query API does, and
            // the numbers are the org's own.
            let evs = &seeded[&o.id];
            let hist = latency_hist(evs);
            for (q, title) in [
                (0.5, "Latency p50"),
                (0.95, "Latency p95"),
                (0.99, "Latency p99"),
            ] {
                let want = histogram::quantile(&hist, q).context("no latency")?;
                let got = stats[&format!("errors-latency.json/{title}/90d")];
                ensure!(
                    (got - want).abs() < 1e-9,
                    "{title}: {got}, the query API's {want}"
                );
            }
            let cost: f64 = evs.iter().filter_map(|e| e.cost_usd).sum();
            let got = stats["cost.json/Spend/90d"];
            ensure!((got - cost).abs() < 1e-6, "spend {got}, seeded {cost}");
            let finished = evs
                .iter()
                .filter(|e| matches!(e.event_type.as_str(), "run_completed" | "run_failed"))
                .count() as f64;
            ensure!(stats["fleet-overview.json/Runs finished/90d"] == finished);
            ensure!(stats["budgets.json/Firing alerts/24h"] == 1.0);
            ensure!(stats["budgets.json/Paused or killed agents/24h"] == 1.0);
            Ok(())
        }
        .await;
        reader.close().await?;
        checked.with_context(|| format!("as {} ({:?})", o.role, mode))?;
    }
    Ok(())
}

/// The role reads its org's rows, all of them, in every view; every other
/// relation (and writing) is refused.
async fn isolation(
    reader: &mut Reader,
    o: &Org,
    other: &Org,
    expected: &BTreeMap<(String, &str), i64>,
    others: &[(String, String)],
) -> Result<()> {
    for rel in grafana::relations() {
        let (n, foreign): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE org_id <> '{}') FROM grafana.{rel}",
            o.id
        ))
        .fetch_one(reader.c())
        .await
        .with_context(|| format!("grafana.{rel}"))?;
        ensure!(foreign == 0, "grafana.{rel}: {foreign} rows of other orgs");
        ensure!(
            n == expected[&(o.id.clone(), rel)],
            "grafana.{rel}: {n} rows, the org has {}",
            expected[&(o.id.clone(), rel)]
        );
        // Not even by naming the other org.
        let (m,): (i64,) = sqlx::query_as(&format!(
            "SELECT count(*) FROM grafana.{rel} WHERE org_id = '{}'",
            other.id
        ))
        .fetch_one(reader.c())
        .await?;
        ensure!(m == 0, "grafana.{rel}: {m} rows of {}", other.id);
    }
    for (schema, rel) in others {
        let code = reader
            .error_code(&format!("SELECT 1 FROM \"{schema}\".\"{rel}\" LIMIT 1"))
            .await;
        ensure!(
            code.as_deref() == Some("42501"),
            "{schema}.{rel} as {}: {code:?}, expected permission denied",
            o.role
        );
    }
    for sql in [
        "SELECT 1 FROM grafana.org_roles",
        "SELECT 1 FROM public.events",
        "SELECT 1 FROM public.api_keys",
    ] {
        let code = reader.error_code(sql).await;
        ensure!(code.as_deref() == Some("42501"), "{sql}: {code:?}");
    }
    // Writes: refused even in a read-write transaction.
    for sql in [
        "INSERT INTO grafana.alerts (alert_id, org_id, kind, period, threshold, value, message)
         VALUES ('x', 'x', 'x', 'x', 1, 1, 'x')",
        "DELETE FROM grafana.budgets",
        "CREATE TABLE grafana.mine (x int)",
        "CREATE TABLE public.mine (x int)",
    ] {
        let code = reader
            .error_code(&format!("BEGIN READ WRITE; {sql}; COMMIT"))
            .await;
        let _ = reader.error_code("ROLLBACK").await;
        ensure!(code.as_deref() == Some("42501"), "{sql}: {code:?}");
    }
    Ok(())
}
