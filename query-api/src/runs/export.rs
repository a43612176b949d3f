//! `GET /v1/runs/export?format=csv|json&<the search's filters>`: every run
//! of a search as a download (`Content-Disposition: attachment`), in the
//! search's order, streamed a page of 1,000 at a time through the same
//! keyset pages (`limit` and `cursor` are not taken). At most
//! [`ROW_CAP`] rows; `X-AgentOps-Truncated: true` when the filter matches
//! more (counted before the first row), `X-AgentOps-Row-Cap` names the cap.
//!
//! CSV: a header row, then one row per run ([`HEADER`]); lists joined with
//! `;`, tags as a JSON object; a cell with a comma, quote or line break is
//! quoted (quotes doubled), and a text cell starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'` so no spreadsheet runs
//! it as a formula. JSON: `{"runs": [...], "row_cap": 100000,
//! "truncated": bool}`, each run as the search answers it.

use std::sync::Arc;

use agentops_runtime::keys::Scope;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use sqlx::QueryBuilder;

use super::{Cursor, RunOut, RunsQuery, Search};
use crate::error::ApiError;
use crate::params::Query;
use crate::state::{authenticate, AppState, Shared};

/// Most rows of one export.
pub(crate) const ROW_CAP: i64 = 100_000;
/// Rows read per page.
const PAGE: i64 = 1000;

/// The CSV header row.
pub(crate) const HEADER: &str = "run_id,agent_id,workflow_id,status,started_at,ended_at,\
latency_ms,cost_usd,input_tokens,output_tokens,llm_calls,tool_calls,models,providers,tags,\
error_type,error_message\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// A text cell: neutralised when a spreadsheet would read a formula, quoted
/// when it holds a separator, quote or line break.
pub(crate) fn csv_text(out: &mut String, s: &str) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = s.contains(['"', ',', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// One CSV row (CRLF-terminated, as RFC 4180 has it).
pub(crate) fn csv_row(out: &mut String, r: &RunOut) {
    let text = |out: &mut String, s: &str| {
        csv_text(out, s);
        out.push(',');
    };
    text(out, &r.run_id);
    text(out, &r.agent_id);
    text(out, r.workflow_id.as_deref().unwrap_or_default());
    text(out, &r.status);
    text(out, &time(r.started_at));
    text(out, &time(r.ended_at));
    let nums = [
        r.latency_ms.map(|l| l.to_string()).unwrap_or_default(),
        r.cost_usd.to_string(),
        r.input_tokens.to_string(),
        r.output_tokens.to_string(),
        r.llm_calls.to_string(),
        r.tool_calls.to_string(),
    ];
    for n in nums {
        out.push_str(&n);
        out.push(',');
    }
    text(out, &r.models.join(";"));
    text(out, &r.providers.join(";"));
    text(out, &r.tags.0.to_string());
    text(out, r.error_type.as_deref().unwrap_or_default());
    csv_text(out, r.error_message.as_deref().unwrap_or_default());
    out.push_str("\r\n");
}

/// Whether the filter matches more than [`ROW_CAP`] runs.
async fn over_cap(s: &AppState, search: &Search, org: &str) -> Result<bool, sqlx::Error> {
    let mut b = QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM runs");
    search.push_filters(&mut b, org);
    b.push(" LIMIT ").push_bind(ROW_CAP + 1).push(") capped");
    let n: i64 = b.build_query_scalar().fetch_one(&s.pool).await?;
    Ok(n > ROW_CAP)
}

/// Where the stream is.
struct Progress {
    state: Arc<AppState>,
    org: String,
    search: Search,
    sent: i64,
    format: Format,
    /// None: the header is still to be sent; Some(false): rows follow;
    /// Some(true): the end has been written.
    done: Option<bool>,
}

/// The next chunk of the body: the header, a page of rows, the end.
async fn next_chunk(mut p: Progress) -> Option<(Result<Bytes, std::io::Error>, Progress)> {
    match p.done {
        Some(true) => return None,
        None => {
            p.done = Some(false);
            let head = match p.format {
                Format::Csv => HEADER,
                Format::Json => "{\"runs\":[",
            };
            return Some((Ok(Bytes::from_static(head.as_bytes())), p));
        }
        Some(false) => {}
    }
    let room = ROW_CAP - p.sent;
    let mut search = p.search.clone();
    search.limit = room.min(PAGE);
    let (rows, next): (Vec<RunOut>, Option<Cursor>) = if room > 0 {
        match search.page(&p.state.pool, &p.org).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, org_id = %p.org, "run export failed");
                p.done = Some(true);
                return Some((Err(std::io::Error::other("export failed")), p));
            }
        }
    } else {
        (Vec::new(), None)
    };
    let mut out = String::new();
    for r in &rows {
        match p.format {
            Format::Csv => csv_row(&mut out, r),
            Format::Json => {
                if p.sent > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "null".into()));
            }
        }
        p.sent += 1;
    }
    match next {
        Some(c) if p.sent < ROW_CAP => p.search.after = Some(c),
        next => {
            p.done = Some(true);
            if p.format == Format::Json {
                let truncated = next.is_some();
                out.push_str(&format!(
                    "],\"row_cap\":{ROW_CAP},\"truncated\":{truncated}}}"
                ));
            }
        }
    }
    Some((Ok(Bytes::from(out)), p))
}

#[utoipa::path(get, path = "/v1/runs/export", tag = "runs",
    params(crate::openapi::reads::ExportQuery, crate::openapi::reads::RunsQuery),
    responses((status = 200, description = "The runs, streamed",
        content((String = "text/csv"), (crate::openapi::reads::RunExport = "application/json")))))]
pub(super) async fn export(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let format = match q.format.as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(f) => {
            return Err(ApiError::BadParam {
                field: "format",
                message: format!("`{f}` is not one of csv, json"),
            })
        }
    };
    for (field, given) in [("limit", &q.limit), ("cursor", &q.cursor)] {
        if given.is_some() {
            return Err(ApiError::BadParam {
                field,
                message: "an export reads every page itself (at most 100000 rows)".into(),
            });
        }
    }
    let now = Utc::now();
    let search = Search::parse(&q, now)?;
    let truncated = over_cap(&s, &search, &key.org_id).await?;
    let (ext, mime) = match format {
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::Json => ("json", "application/json"),
    };
    let progress = Progress {
        state: s.clone(),
        org: key.org_id.clone(),
        search,
        sent: 0,
        format,
        done: None,
    };
    let body = Body::from_stream(stream::unfold(progress, next_chunk).boxed());
    let disposition = format!(
        "attachment; filename=\"runs-{}.{ext}\"",
        now.format("%Y%m%dT%H%M%SZ")
    );
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        "x-agentops-truncated",
        HeaderValue::from_static(if truncated { "true" } else { "false" }),
    );
    h.insert("x-agentops-row-cap", HeaderValue::from(ROW_CAP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = String::new();
        csv_text(&mut out, s);
        out
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(""), "");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(" padded"), "\" padded\"");
        assert_eq!(cell("=1+2"), "'=1+2");
        assert_eq!(cell("+cmd"), "'+cmd");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\tx"), "'\tx");
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(cell("a=b"), "a=b");
    }

    #[test]
    fn rows_have_every_column() {
        let r = RunOut {
            run_id: "r1".into(),
            agent_id: "a".into(),
            workflow_id: None,
            status: "failed".into(),
            started_at: Some("2026-11-22T10:00:00.5Z".parse().unwrap()),
            ended_at: None,
            latency_ms: None,
            cost_usd: 0.25,
            input_tokens: 1,
            output_tokens: 2,
            llm_calls: 3,
            tool_calls: 4,
            models: vec!["m1".into(), "m2".into()],
            providers: vec!["p".into()],
            tags: sqlx::types::Json(serde_json::json!({"team": "pay"})),
            error_type: Some("tool_error".into()),
            error_message: Some("=cmd|' /C calc'!A0, boom".into()),
        };
        let mut out = String::new();
        csv_row(&mut out, &r);
        assert_eq!(
            out,
            "r1,a,,failed,2026-11-22T10:00:00.500Z,,,0.25,1,2,3,4,m1;m2,p,\
             \"{\"\"team\"\":\"\"pay\"\"}\",tool_error,\"'=cmd|' /C calc'!A0, boom\"\r\n"
        );
        // 17 columns: 16 separators, and one comma inside the message.
        assert_eq!(HEADER.split(',').count(), 17);
        assert_eq!(out.matches(',').count(), 17);
    }
}
