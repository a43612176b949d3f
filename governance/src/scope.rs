//! What a budget, rule or policy applies to ([`Scope`]) and over which
//! period ([`Period`]).
//!
//! - [`Period`]: `day` (from UTC midnight), `week` (from Monday 00:00 UTC),
//!   `month` (from the 1st, 00:00 UTC); [`period_start`], [`period_end`] and
//!   [`period_key`] (`2026-11-22`, `2026-W47` (ISO week), `2026-11`).
//! - [`Scope`]: stored as `scope_kind` + `scope_value` (NULL for `org`,
//!   `key=value` for `tag`) and written as one string by
//!   [`Scope::scope_key`]: `org`, `agent=a1`, `workflow=triage`,
//!   `model=gpt-4o`, `tag=team=pay`.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

use crate::vocabulary::{vocabulary, UnknownName};

vocabulary! {
    /// A budget period, in UTC (the `budgets.period` column).
    pub enum Period ("period") {
        Day = "day",
        Week = "week",
        Month = "month",
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(NaiveTime::MIN))
}

/// Days in the month of `d`.
fn days_in_month(d: NaiveDate) -> i64 {
    match d.month() {
        2 if d.leap_year() => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Start of the period containing `now`: UTC midnight (day), Monday 00:00
/// UTC (week), the 1st at 00:00 UTC (month). Inclusive.
pub fn period_start(period: Period, now: DateTime<Utc>) -> DateTime<Utc> {
    let d = now.date_naive();
    match period {
        Period::Day => midnight(d),
        Period::Week => midnight(d - Duration::days(i64::from(d.weekday().num_days_from_monday()))),
        Period::Month => midnight(d - Duration::days(i64::from(d.day0()))),
    }
}

/// End of the period containing `now` (exclusive): the next period's start.
pub fn period_end(period: Period, now: DateTime<Utc>) -> DateTime<Utc> {
    let start = period_start(period, now);
    match period {
        Period::Day => start + Duration::days(1),
        Period::Week => start + Duration::days(7),
        Period::Month => start + Duration::days(days_in_month(start.date_naive())),
    }
}

/// A stable name of the period containing `now`, for alert ids:
/// `2026-11-22` (day), `2026-W47` (ISO 8601 week, whose year can differ from
/// the calendar year around New Year), `2026-11` (month).
pub fn period_key(period: Period, now: DateTime<Utc>) -> String {
    let d = now.date_naive();
    match period {
        Period::Day => d.format("%Y-%m-%d").to_string(),
        Period::Week => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Period::Month => d.format("%Y-%m").to_string(),
    }
}

vocabulary! {
    /// What kind of thing a budget, rule or policy applies to (the
    /// `scope_kind` column).
    pub enum ScopeKind ("scope kind") {
        Org = "org",
        Agent = "agent",
        Workflow = "workflow",
        Model = "model",
        Tag = "tag",
        /// Contract v2's hierarchy (coding agents): `project_id`,
        /// `machine_id`, `workspace_id`, `session_id` of the events.
        Project = "project",
        Machine = "machine",
        Workspace = "workspace",
        Session = "session",
    }
}

impl ScopeKind {
    /// The kinds of the hierarchy (project, machine, workspace, session).
    pub const HIERARCHY: &'static [ScopeKind] = &[
        ScopeKind::Project,
        ScopeKind::Machine,
        ScopeKind::Workspace,
        ScopeKind::Session,
    ];

    /// The kinds that existed before the hierarchy (what policies, and
    /// rules over the aggregates, may use).
    pub const CLASSIC: &'static [ScopeKind] = &[
        ScopeKind::Org,
        ScopeKind::Agent,
        ScopeKind::Workflow,
        ScopeKind::Model,
        ScopeKind::Tag,
    ];

    /// Whether this is a hierarchy kind.
    pub fn is_hierarchy(self) -> bool {
        Self::HIERARCHY.contains(&self)
    }

    /// The `events` column of a hierarchy kind.
    pub fn event_column(self) -> Option<&'static str> {
        match self {
            ScopeKind::Project => Some("project_id"),
            ScopeKind::Machine => Some("machine_id"),
            ScopeKind::Workspace => Some("workspace_id"),
            ScopeKind::Session => Some("session_id"),
            _ => None,
        }
    }
}

/// Where an event's work happened (contract v2's hierarchy fields), for
/// [`Scope::matches`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place<'a> {
    pub project: Option<&'a str>,
    pub machine: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub session: Option<&'a str>,
}

/// Why a scope is invalid. [`ScopeError::field`] names the offending column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("`{0}` is not one of org, agent, workflow, model, tag, project, machine, workspace, session")]
    UnknownKind(String),
    #[error("an org scope takes no value")]
    ValueForOrg,
    #[error("a {0} scope needs a value")]
    MissingValue(ScopeKind),
    #[error("a tag scope value is `key=value` with a non-empty key and value")]
    BadTag,
    #[error("a scope value is at most {MAX_SCOPE_VALUE} characters without control characters")]
    BadValue,
    #[error("`{0}` is not a scope key like org, agent=a1 or tag=team=pay")]
    BadKey(String),
}

impl ScopeError {
    /// `scope_kind` or `scope_value`: the field to blame in an API answer.
    pub fn field(&self) -> &'static str {
        match self {
            ScopeError::UnknownKind(_) | ScopeError::BadKey(_) => "scope_kind",
            _ => "scope_value",
        }
    }
}

/// Longest accepted scope value.
pub const MAX_SCOPE_VALUE: usize = 256;

/// A validated scope: `kind` plus `value` (None exactly for `org`; for `tag`
/// `key=value`, split at the first `=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    kind: ScopeKind,
    value: Option<String>,
}

impl Scope {
    /// The whole org.
    pub fn org() -> Scope {
        Scope {
            kind: ScopeKind::Org,
            value: None,
        }
    }

    /// Validate a kind and value (as stored in `scope_kind` / `scope_value`).
    /// An empty value counts as absent.
    pub fn new(kind: ScopeKind, value: Option<&str>) -> Result<Scope, ScopeError> {
        let value = value.filter(|v| !v.is_empty());
        match (kind, value) {
            (ScopeKind::Org, None) => Ok(Scope::org()),
            (ScopeKind::Org, Some(_)) => Err(ScopeError::ValueForOrg),
            (k, None) => Err(ScopeError::MissingValue(k)),
            (k, Some(v)) => {
                if v.chars().count() > MAX_SCOPE_VALUE || v.chars().any(char::is_control) {
                    return Err(ScopeError::BadValue);
                }
                if k == ScopeKind::Tag {
                    match v.split_once('=') {
                        Some((key, val)) if !key.is_empty() && !val.is_empty() => {}
                        _ => return Err(ScopeError::BadTag),
                    }
                }
                Ok(Scope {
                    kind: k,
                    value: Some(v.to_owned()),
                })
            }
        }
    }

    /// [`Scope::new`] from the raw column strings.
    pub fn parse(kind: &str, value: Option<&str>) -> Result<Scope, ScopeError> {
        let kind = kind
            .parse()
            .map_err(|e: UnknownName| ScopeError::UnknownKind(e.name))?;
        Scope::new(kind, value)
    }

    /// Inverse of [`Scope::scope_key`].
    pub fn from_key(key: &str) -> Result<Scope, ScopeError> {
        if key == "org" {
            return Ok(Scope::org());
        }
        let (kind, value) = key
            .split_once('=')
            .ok_or_else(|| ScopeError::BadKey(key.to_owned()))?;
        Scope::parse(kind, Some(value))
    }

    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// The `scope_value` column: None for `org`.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// For a tag scope, the attribute key and value.
    pub fn tag(&self) -> Option<(&str, &str)> {
        match self.kind {
            ScopeKind::Tag => self.value.as_deref().and_then(|v| v.split_once('=')),
            _ => None,
        }
    }

    /// One string naming the scope: `org`, `agent=a1`, `tag=team=pay`.
    pub fn scope_key(&self) -> String {
        match &self.value {
            None => "org".to_owned(),
            Some(v) => format!("{}={v}", self.kind.as_str()),
        }
    }

    /// Whether an event with these fields is in scope (model: exact name).
    pub fn matches(
        &self,
        agent_id: &str,
        workflow_id: Option<&str>,
        model: Option<&str>,
        attributes: &HashMap<String, String>,
        place: &Place<'_>,
    ) -> bool {
        let v = self.value.as_deref();
        let is = |x: Option<&str>| x.is_some() && v == x;
        match self.kind {
            ScopeKind::Project => is(place.project),
            ScopeKind::Machine => is(place.machine),
            ScopeKind::Workspace => is(place.workspace),
            ScopeKind::Session => is(place.session),
            ScopeKind::Org => true,
            ScopeKind::Agent => v == Some(agent_id),
            ScopeKind::Workflow => workflow_id.is_some() && v == workflow_id,
            ScopeKind::Model => model.is_some() && v == model,
            ScopeKind::Tag => self
                .tag()
                .is_some_and(|(k, val)| attributes.get(k).map(String::as_str) == Some(val)),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scope_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn period_starts_ends_and_keys() {
        // Sunday 2026-11-22, late evening.
        let now = at("2026-11-22T23:59:59.999Z");
        assert_eq!(period_start(Period::Day, now), at("2026-11-22T00:00:00Z"));
        assert_eq!(period_end(Period::Day, now), at("2026-11-23T00:00:00Z"));
        assert_eq!(period_start(Period::Week, now), at("2026-11-16T00:00:00Z"));
        assert_eq!(period_end(Period::Week, now), at("2026-11-23T00:00:00Z"));
        assert_eq!(period_start(Period::Month, now), at("2026-11-01T00:00:00Z"));
        assert_eq!(period_end(Period::Month, now), at("2026-12-01T00:00:00Z"));
        assert_eq!(period_key(Period::Day, now), "2026-11-22");
        assert_eq!(period_key(Period::Week, now), "2026-W47");
        assert_eq!(period_key(Period::Month, now), "2026-11");
        // A Monday at midnight starts its own week.
        let monday = at("2026-11-23T00:00:00Z");
        assert_eq!(period_start(Period::Week, monday), monday);
        assert_eq!(period_key(Period::Week, monday), "2026-W48");
        // December rolls into the next year; ISO week years differ from
        // calendar years around New Year.
        let dec = at("2026-12-31T12:00:00Z");
        assert_eq!(period_end(Period::Month, dec), at("2027-01-01T00:00:00Z"));
        assert_eq!(period_key(Period::Week, dec), "2026-W53");
        assert_eq!(
            period_key(Period::Week, at("2024-12-30T00:00:00Z")),
            "2025-W01"
        );
        // Week starting in the previous month.
        assert_eq!(
            period_start(Period::Week, at("2026-03-01T10:00:00Z")),
            at("2026-02-23T00:00:00Z")
        );
    }

    #[test]
    fn period_start_is_idempotent_and_contains_now() {
        let mut t = at("2023-12-25T05:06:07Z");
        for _ in 0..800 {
            for &p in Period::ALL {
                let s = period_start(p, t);
                let e = period_end(p, t);
                assert!(s <= t && t < e, "{p} {t}: {s}..{e}");
                assert_eq!(period_start(p, s), s);
                assert_eq!(period_start(p, e), e);
                assert_eq!(period_key(p, s), period_key(p, t));
                assert_ne!(period_key(p, e), period_key(p, t));
            }
            t += Duration::hours(13);
        }
    }

    #[test]
    fn periods_parse() {
        for &p in Period::ALL {
            assert_eq!(p.as_str().parse::<Period>(), Ok(p));
        }
        assert!("daily".parse::<Period>().is_err());
    }

    #[test]
    fn scopes_validate_and_round_trip() {
        let org = Scope::parse("org", None).unwrap();
        assert_eq!(org.scope_key(), "org");
        assert_eq!(Scope::parse("org", Some("")).unwrap(), org);
        assert_eq!(Scope::parse("org", Some("x")), Err(ScopeError::ValueForOrg));
        assert_eq!(
            Scope::parse("agent", None),
            Err(ScopeError::MissingValue(ScopeKind::Agent))
        );
        let e = Scope::parse("team", Some("x")).unwrap_err();
        assert_eq!(e.field(), "scope_kind");
        assert_eq!(Scope::parse("tag", Some("team")), Err(ScopeError::BadTag));
        assert_eq!(Scope::parse("tag", Some("=pay")), Err(ScopeError::BadTag));
        assert_eq!(Scope::parse("tag", Some("team=")), Err(ScopeError::BadTag));
        assert_eq!(
            Scope::parse("agent", Some("a\nb")),
            Err(ScopeError::BadValue)
        );
        assert_eq!(
            Scope::parse("agent", Some(&"x".repeat(300))),
            Err(ScopeError::BadValue)
        );
        let tag = Scope::parse("tag", Some("team=pay=x")).unwrap();
        assert_eq!(tag.tag(), Some(("team", "pay=x")));
        assert_eq!(tag.scope_key(), "tag=team=pay=x");
        for s in [
            org,
            tag,
            Scope::parse("agent", Some("a1")).unwrap(),
            Scope::parse("model", Some("gpt-4o")).unwrap(),
            Scope::parse("workflow", Some("w=1")).unwrap(),
        ] {
            assert_eq!(Scope::from_key(&s.scope_key()).as_ref(), Ok(&s));
        }
        assert!(Scope::from_key("agent").is_err());
    }

    #[test]
    fn scopes_match_events() {
        let attrs: HashMap<String, String> = [("team".into(), "pay".into())].into();
        let none = HashMap::new();
        let m = |k: &str, v: Option<&str>| Scope::parse(k, v).unwrap();
        assert!(m("org", None).matches("a", None, None, &none, &Place::default()));
        assert!(m("agent", Some("a")).matches("a", None, None, &none, &Place::default()));
        assert!(!m("agent", Some("a")).matches("b", None, None, &none, &Place::default()));
        assert!(m("workflow", Some("w")).matches("a", Some("w"), None, &none, &Place::default()));
        assert!(!m("workflow", Some("w")).matches("a", None, None, &none, &Place::default()));
        assert!(m("model", Some("gpt-4o")).matches(
            "a",
            None,
            Some("gpt-4o"),
            &none,
            &Place::default()
        ));
        assert!(m("tag", Some("team=pay")).matches("a", None, None, &attrs, &Place::default()));
        assert!(!m("tag", Some("team=ops")).matches("a", None, None, &attrs, &Place::default()));
        let here = Place {
            project: Some("github.com/acme/shop"),
            machine: Some("m1"),
            workspace: Some("w1"),
            session: Some("s1"),
        };
        for (k, v) in [
            ("project", "github.com/acme/shop"),
            ("machine", "m1"),
            ("workspace", "w1"),
            ("session", "s1"),
        ] {
            assert!(m(k, Some(v)).matches("a", None, None, &none, &here), "{k}");
            assert!(
                !m(k, Some("other")).matches("a", None, None, &none, &here),
                "{k}"
            );
            assert!(
                !m(k, Some(v)).matches("a", None, None, &none, &Place::default()),
                "{k}"
            );
            let s = m(k, Some(v));
            assert!(s.kind().is_hierarchy() && s.kind().event_column().is_some());
            assert_eq!(Scope::from_key(&s.scope_key()).as_ref(), Ok(&s));
        }
    }
}
