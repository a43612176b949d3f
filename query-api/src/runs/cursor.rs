//! The opaque cursor of the run search: base64url of `v1`, the sort, the
//! order, the first page's time, the last row's sort key and run id.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::DateTime;

use super::{RunOut, Sort};
use crate::error::ApiError;
use crate::params::identifier;

/// A sort key value of one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Key {
    /// Microseconds since the epoch.
    Time(i64),
    Float(f64),
    Int(i64),
}

/// Where a page starts: after this row, in a search begun at `anchor`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) sort: Sort,
    pub(crate) desc: bool,
    /// The first page's time (microseconds): `window` counts back from it.
    pub(crate) anchor: i64,
    pub(crate) key: Key,
    pub(crate) run_id: String,
}

fn bad_cursor(message: &str) -> ApiError {
    ApiError::BadParam {
        field: "cursor",
        message: message.into(),
    }
}

impl Cursor {
    /// base64url of `v1`, sort, order, anchor, key and run id, one per line.
    pub(crate) fn encode(&self) -> String {
        let key = match self.key {
            Key::Time(us) | Key::Int(us) => us.to_string(),
            // Display of f64 is the shortest text that parses back exactly.
            Key::Float(x) => x.to_string(),
        };
        let order = if self.desc { "desc" } else { "asc" };
        let text = format!(
            "v1\n{}\n{order}\n{}\n{key}\n{}",
            self.sort.name(),
            self.anchor,
            self.run_id
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor of a page sorted by `sort`, `desc`; anything else is a
    /// 400 naming `cursor`.
    pub(crate) fn decode(raw: &str, sort: Sort, desc: bool) -> Result<Cursor, ApiError> {
        let garbage = || bad_cursor("not a cursor of this search (take `next_cursor` as it is)");
        if raw.len() > 2048 {
            return Err(garbage());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| garbage())?;
        let text = String::from_utf8(bytes).map_err(|_| garbage())?;
        let parts: Vec<&str> = text.splitn(6, '\n').collect();
        let [version, s, order, anchor, key, run_id] = parts[..] else {
            return Err(garbage());
        };
        if version != "v1" {
            return Err(garbage());
        }
        let c_sort = Sort::parse(s).ok_or_else(garbage)?;
        let c_desc = match order {
            "desc" => true,
            "asc" => false,
            _ => return Err(garbage()),
        };
        if c_sort != sort || c_desc != desc {
            return Err(bad_cursor(
                "this cursor belongs to another sort or order: start again without it",
            ));
        }
        let anchor: i64 = anchor.parse().map_err(|_| garbage())?;
        let key = match sort {
            Sort::StartedAt => Key::Time(key.parse().map_err(|_| garbage())?),
            Sort::Latency => Key::Int(key.parse().map_err(|_| garbage())?),
            Sort::Cost => Key::Float(
                key.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(garbage)?,
            ),
        };
        DateTime::from_timestamp_micros(anchor).ok_or_else(garbage)?;
        if let Key::Time(t) = key {
            DateTime::from_timestamp_micros(t).ok_or_else(garbage)?;
        }
        let run_id = identifier("cursor", run_id)?.to_owned();
        Ok(Cursor {
            sort,
            desc,
            anchor,
            key,
            run_id,
        })
    }

    /// The cursor after `row`.
    pub(crate) fn after(row: &RunOut, sort: Sort, desc: bool, anchor: i64) -> Cursor {
        let key = match sort {
            Sort::StartedAt => Key::Time(row.started_at.map_or(0, |t| t.timestamp_micros())),
            Sort::Cost => Key::Float(row.cost_usd),
            Sort::Latency => Key::Int(row.latency_ms.unwrap_or(-1)),
        };
        Cursor {
            sort,
            desc,
            anchor,
            key,
            run_id: row.run_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> &'static str {
        match e {
            ApiError::BadParam { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cursors_round_trip() {
        for (sort, key) in [
            (Sort::StartedAt, Key::Time(1_790_000_000_123_456)),
            (Sort::Cost, Key::Float(0.1 + 0.2)),
            (Sort::Cost, Key::Float(1e-12)),
            (Sort::Latency, Key::Int(-1)),
        ] {
            for desc in [true, false] {
                let c = Cursor {
                    sort,
                    desc,
                    anchor: 1_790_000_000_000_000,
                    key,
                    run_id: "run|with\u{e9}|pipes and = signs".into(),
                };
                let text = c.encode();
                assert!(text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                assert_eq!(Cursor::decode(&text, sort, desc).unwrap(), c);
                // Another sort or order is refused, naming the cursor.
                assert_eq!(
                    field(Cursor::decode(&text, sort, !desc).unwrap_err()),
                    "cursor"
                );
                let other = if sort == Sort::Cost {
                    Sort::Latency
                } else {
                    Sort::Cost
                };
                assert_eq!(
                    field(Cursor::decode(&text, other, desc).unwrap_err()),
                    "cursor"
                );
            }
        }
    }

    #[test]
    fn garbage_cursors_are_refused() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        for raw in [
            "".to_owned(),
            "!!!".to_owned(),
            "x".repeat(3000),
            enc("v2\nstarted_at\ndesc\n0\n0\nr"),
            enc("v1\nstarted_at\ndesc\n0\n0"),
            enc("v1\nstarted_at\ndesc\nzero\n0\nr"),
            enc("v1\nstarted_at\ndesc\n0\n1.5\nr"),
            enc("v1\nstarted_at\ndesc\n0\n0\n"),
            enc("v1\nstarted_at\ndesc\n0\n0\nr\u{0}"),
            enc("v1\nstarted_at\ndesc\n9223372036854775807\n0\nr"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            let e = Cursor::decode(&raw, Sort::StartedAt, true).unwrap_err();
            assert_eq!(field(e), "cursor", "{raw}");
        }
        for bad in ["NaN", "inf", "x"] {
            let raw = enc(&format!("v1\ncost_usd\ndesc\n0\n{bad}\nr"));
            assert_eq!(
                field(Cursor::decode(&raw, Sort::Cost, true).unwrap_err()),
                "cursor"
            );
        }
    }
}
