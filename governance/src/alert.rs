//! Alert identities. An alert's id is deterministic in what raised it, so a
//! replayed or re-evaluated crossing finds the alert it already raised
//! instead of raising a second one.

use crate::vocabulary::vocabulary;

vocabulary! {
    /// What raised an alert (the `alerts.source` column).
    pub enum AlertSource ("alert source") {
        Budget = "budget",
        Rule = "rule",
        Policy = "policy",
        Digest = "digest",
    }
}

/// A budget crossing: one per budget, period and threshold percent.
pub fn budget_alert_id(budget_id: &str, period_key: &str, pct: f64) -> String {
    format!("budget:{budget_id}:{period_key}:{pct}")
}

/// A rule firing: one per rule, scope key and firing (its time in ms); the
/// resolution reuses the firing's id.
pub fn rule_alert_id(rule_id: &str, scope_key: &str, fired_at_ms: i64) -> String {
    format!("rule:{rule_id}:{scope_key}:{fired_at_ms}")
}

/// A policy violation: one per policy, agent and UTC day (`YYYY-MM-DD`).
pub fn policy_alert_id(policy_id: &str, agent_id: &str, day: &str) -> String {
    format!("policy:{policy_id}:{agent_id}:{day}")
}

/// The daily digest: one per org and UTC day.
pub fn digest_alert_id(org_id: &str, day: &str) -> String {
    format!("digest:{org_id}:{day}")
}

/// The source named by an alert id's prefix.
pub fn source_of(alert_id: &str) -> Option<AlertSource> {
    alert_id.split_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_source() {
        let ids = [
            (budget_alert_id("b", "2026-12", 80.0), AlertSource::Budget),
            (rule_alert_id("r", "agent=a", 1), AlertSource::Rule),
            (policy_alert_id("p", "a", "2026-12-05"), AlertSource::Policy),
            (digest_alert_id("o", "2026-12-05"), AlertSource::Digest),
        ];
        for (id, source) in ids {
            assert_eq!(source_of(&id), Some(source), "{id}");
        }
        assert_eq!(budget_alert_id("b", "2026-12", 80.0), "budget:b:2026-12:80");
        assert_eq!(source_of("nope"), None);
    }
}
