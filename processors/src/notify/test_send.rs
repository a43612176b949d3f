//! A test notification, sent at once on an operator's request (the query
//! API's `POST /v1/admin/channels/{id}/test`): the same body, headers,
//! signature and outbound guard as a real delivery, one attempt, no retry,
//! nothing recorded in `alerts` or `alert_deliveries`. Receivers can tell it
//! by `source`/`kind` `test` and an alert id starting with `test-`.

use agentops_runtime::outbound::Outbound;
use serde_json::json;

use super::channels::{self, ChannelKind, Class};
use super::deliver::headers;
use crate::alert::{Alert, Transition};

/// How a test send went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSend {
    /// The channel answered 2xx.
    pub delivered: bool,
    /// The HTTP status, when the channel answered.
    pub status: Option<u16>,
    /// Why it was not delivered (refused destination, timeout, status class).
    pub error: Option<String>,
}

/// The test alert for channel `channel` of `org`.
fn test_alert(org: &str, channel: &str) -> Alert {
    let now = chrono::Utc::now();
    Alert {
        alert_id: format!("test-{}", uuid::Uuid::new_v4()),
        org_id: org.to_owned(),
        source: "test".into(),
        source_id: None,
        kind: "test".into(),
        scope_key: "org".into(),
        transition: Transition::Firing,
        severity: "info".into(),
        period: String::new(),
        threshold: 0.0,
        value: 0.0,
        message: format!("Test notification for channel \"{channel}\": this channel works."),
        details: json!({"name": channel, "unit": "test"}),
        channels: Vec::new(),
        occurred_at: now,
    }
}

/// Send one test notification of `kind` to `url` (signed with `secret` for
/// a webhook) through `http`'s guard. Never fails: the outcome says why.
pub async fn test_send(
    http: &Outbound,
    kind: &str,
    url: &str,
    secret: Option<&str>,
    org: &str,
    channel: &str,
    dashboard_url: &str,
) -> TestSend {
    let Ok(kind) = kind.parse::<ChannelKind>() else {
        return TestSend {
            delivered: false,
            status: None,
            error: Some(format!("unknown channel kind {kind:?}")),
        };
    };
    let alert = test_alert(org, channel);
    let body = channels::body(kind, &alert, Transition::Firing, dashboard_url);
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let h = headers(
        &alert.alert_id,
        Transition::Firing,
        kind,
        secret,
        now,
        &body,
    );
    match http.post(url, h, body).await {
        Ok(answer) => {
            let status = answer.status.as_u16();
            let delivered = channels::classify(status) == Class::Delivered;
            TestSend {
                delivered,
                status: Some(status),
                error: (!delivered).then(|| {
                    format!(
                        "{}: {} answered {}",
                        channels::status_class(status),
                        kind.as_str(),
                        answer.status
                    )
                }),
            }
        }
        Err(f) => TestSend {
            delivered: false,
            status: None,
            error: Some(match &f {
                agentops_runtime::outbound::Failure::Refused(r) => {
                    format!("{}: {}", f.class(), r.reason())
                }
                other => format!("{}: {other}", other.class()),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_alert_says_what_it_is() {
        let a = test_alert("acme", "ops");
        assert!(a.alert_id.starts_with("test-"));
        assert_eq!((a.source.as_str(), a.kind.as_str()), ("test", "test"));
        let body = channels::body(ChannelKind::Slack, &a, Transition::Firing, "");
        assert!(body.to_string().contains("ops"), "{body}");
    }
}
