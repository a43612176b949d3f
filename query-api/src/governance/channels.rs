//! Notification channels: `slack` / `discord` (their incoming-webhook URL)
//! and `webhook` (any URL; every POST is signed with HMAC-SHA256 under the
//! channel's secret, generated unless supplied and shown only in the create
//! answer; later answers carry `has_secret`). `PUT` changes the name, the
//! URL or the secret (absent fields keep their stored value; the kind is
//! fixed). `POST .../{id}/test` sends a test notification at once through
//! the notifier's own delivery code ([`agentops_processors::notify::test_send`]:
//! same body, headers, signature and outbound guard; one attempt, nothing
//! recorded but an audit row) and answers how it went. Deleting a channel
//! removes it from every budget, rule, policy and digest.
//!
//! The URL and the secret are credentials (a Slack or Discord URL is one):
//! they are stored sealed with the current `secrets` key
//! ([`agentops_runtime::secrets`]) and never answered again; answers carry
//! `url` masked to scheme, host and port (`url_hint`) and `has_secret`.
//!
//! A URL whose destination is not public (an IP-literal host in a denied
//! range, `localhost`) is refused here with a 400 naming `url`, unless the
//! operator allows it in `notify.allow_destinations`; the notifier's
//! outbound guard checks again, after resolving, at every delivery.

use std::sync::OnceLock;

use agentops_governance::channel::{new_webhook_secret, ChannelKind};
use agentops_runtime::outbound::{Guard, Outbound, OutboundConfig};
use agentops_runtime::secrets::{self, Keys};
use serde_json::Value;

use super::crud::Resource;
use super::fields::{bad, name, one_of, opt_str, Obj};
use crate::error::ApiError;

pub(crate) static CHANNELS: Resource = Resource {
    table: "notification_channels",
    list_key: "channels",
    noun: "channel",
    fields: &["name", "kind", "url", "secret", "url_hint"],
    fixed: &["kind"],
    validate,
    output: "to_jsonb(t) - 'org_id' - 'secret' - 'url_hint' || jsonb_build_object(
        'url', COALESCE(t.url_hint, '(hidden)'),
        'has_secret', t.secret IS NOT NULL,
        'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))",
    on_delete: &[
        "UPDATE budgets SET channels = array_remove(channels, $1), updated_at = now()
         WHERE org_id = $2 AND $1 = ANY(channels)",
        "UPDATE alert_rules SET channels = array_remove(channels, $1), updated_at = now()
         WHERE org_id = $2 AND $1 = ANY(channels)",
        "UPDATE policies SET channels = array_remove(channels, $1), updated_at = now()
         WHERE org_id = $2 AND $1 = ANY(channels)",
        "UPDATE digest_subscriptions SET channels = array_remove(channels, $1)
         WHERE org_id = $2 AND $1 = ANY(channels)",
    ],
    updatable: true,
};

const MAX_URL: usize = 2048;

/// The outbound guard with the operator's allowlist, set once at startup.
static GUARD: OnceLock<Guard> = OnceLock::new();

/// Install the guard built from `notify.allow_destinations` (before serving).
pub(crate) fn set_guard(guard: Guard) {
    if GUARD.set(guard).is_err() {
        tracing::warn!("outbound guard already set; the first one stays");
    }
}

/// The guarded client of test sends, set once at startup.
static OUTBOUND: OnceLock<Outbound> = OnceLock::new();

/// Bound on one test send, connect to answer.
const TEST_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Install the guard and the test-send client built from `notify.*`
/// (before serving).
pub(crate) fn set_outbound(cfg: &OutboundConfig) -> agentops_runtime::Result<()> {
    set_guard(Guard::new(&cfg.allow_destinations)?);
    let client = Outbound::new(cfg, TEST_SEND_TIMEOUT, USER_AGENT)?;
    if OUTBOUND.set(client).is_err() {
        tracing::warn!("outbound client already set; the first one stays");
    }
    Ok(())
}

const USER_AGENT: &str = concat!("agentops-query-api/", env!("CARGO_PKG_VERSION"));

/// The installed test-send client, or one with the default settings.
fn outbound() -> Result<&'static Outbound, ApiError> {
    if let Some(o) = OUTBOUND.get() {
        return Ok(o);
    }
    let o = Outbound::new(&OutboundConfig::default(), TEST_SEND_TIMEOUT, USER_AGENT)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(OUTBOUND.get_or_init(|| o))
}

/// The keys channel credentials are sealed with, set once at startup.
static KEYS: OnceLock<Keys> = OnceLock::new();

/// Install the `secrets` keys (before serving or writing a channel).
pub(crate) fn set_keys(keys: Keys) {
    if KEYS.set(keys).is_err() {
        tracing::warn!("secrets keys already set; the first ones stay");
    }
}

/// The installed keys; plaintext when none were installed (unit tests, and
/// the test harness writing rows in-process: the components refuse to
/// start without a key or an explicit `secrets.allow_plaintext`).
fn keys() -> &'static Keys {
    KEYS.get_or_init(Keys::plaintext)
}

/// A channel URL as stored (sealed) and as shown (masked).
pub(crate) fn seal_url(url: &str) -> (String, String) {
    (
        keys().seal(secrets::CHANNEL_URL, url),
        secrets::mask_url(url),
    )
}

/// The secret of a create answer, shown once: the stored value opened.
pub(crate) fn reveal(sealed: &Value) -> Value {
    match sealed
        .as_str()
        .map(|s| keys().open(secrets::CHANNEL_SECRET, s))
    {
        Some(Ok(plain)) => plain.into(),
        _ => Value::Null,
    }
}

/// A destination an org may configure, or why not (for a field-named 400).
pub(crate) fn check_destination(url: &str) -> Result<(), String> {
    GUARD
        .get_or_init(Guard::default)
        .check_configured(url)
        .map(drop)
        .map_err(|r| {
            format!(
                "refused destination ({}): only public destinations can receive notifications",
                r.reason()
            )
        })
}

/// An absolute http(s) URL with a host, no whitespace or control characters.
pub(crate) fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    url.len() <= MAX_URL
        && !host.is_empty()
        && !host.starts_with(':')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A supplied secret: 32 to 256 printable ASCII characters, no spaces (hex
/// or base64url of at least 16 random bytes, or any long passphrase).
fn valid_secret(s: &str) -> bool {
    (32..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Normalized columns; a `webhook` channel gets a fresh secret unless one
/// was supplied.
fn validate(m: &Obj) -> Result<Obj, ApiError> {
    let name = name(m)?;
    let kind: ChannelKind = one_of(m, "kind", None)?;
    // A `PUT` merges the body over the stored row: its URL and secret are
    // the sealed values, opened here (a plain value is returned as is).
    let url = opt_str(m, "url")?
        .and_then(|u| keys().open(secrets::CHANNEL_URL, u).ok())
        .filter(|u| valid_url(u))
        .ok_or_else(|| bad("url", "required: an http:// or https:// URL with a host"))?;
    let url = url.as_str();
    check_destination(url).map_err(|m| bad("url", m))?;
    let supplied = match opt_str(m, "secret")? {
        None => None,
        Some(s) => Some(
            keys()
                .open(secrets::CHANNEL_SECRET, s)
                .map_err(|_| bad("secret", "the stored secret cannot be opened: supply one"))?,
        ),
    };
    let secret = match (kind, supplied.as_deref()) {
        (ChannelKind::Webhook, None) => new_webhook_secret(),
        (ChannelKind::Webhook, Some(s)) if valid_secret(s) => s.to_owned(),
        (ChannelKind::Webhook, Some(_)) => {
            return Err(bad(
                "secret",
                "expected 32 to 256 printable ASCII characters without spaces",
            ))
        }
        (_, None) => String::new(),
        (_, Some(_)) => return Err(bad("secret", "only `webhook` channels are signed")),
    };
    let (sealed_url, hint) = seal_url(url);
    let mut out = Obj::new();
    out.insert("name".into(), name.into());
    out.insert("kind".into(), kind.as_str().into());
    out.insert("url".into(), sealed_url.into());
    out.insert("url_hint".into(), hint.into());
    out.insert(
        "secret".into(),
        if secret.is_empty() {
            Value::Null
        } else {
            keys().seal(secrets::CHANNEL_SECRET, &secret).into()
        },
    );
    Ok(out)
}

/// `POST /v1/admin/channels/{id}/test`: one test notification, now.
#[utoipa::path(post, path = "/v1/admin/channels/{id}/test", tag = "governance",
    params(("id" = String, Path, description = "The channel's id (a UUID)")),
    responses((status = 200, description = "Sent once; whether it was delivered", body = super::docs::ChannelTest)))]
pub(crate) async fn test(
    axum::extract::State(s): crate::state::Shared,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let key =
        crate::state::authenticate(&s, &headers, agentops_runtime::keys::Scope::Admin).await?;
    let id = super::parse_id(&id)?;
    #[derive(sqlx::FromRow)]
    struct Row {
        name: String,
        kind: String,
        url: String,
        secret: Option<String>,
    }
    let row: Row = sqlx::query_as(
        "SELECT name, kind, url, secret FROM notification_channels WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(&key.org_id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or(ApiError::NotFound)?;
    let unreadable = |_| ApiError::Unavailable("the channel's credentials cannot be opened".into());
    let url = keys()
        .open(secrets::CHANNEL_URL, &row.url)
        .map_err(unreadable)?;
    let secret = match &row.secret {
        Some(sealed) => Some(
            keys()
                .open(secrets::CHANNEL_SECRET, sealed)
                .map_err(unreadable)?,
        ),
        None => None,
    };
    let sent = agentops_processors::notify::test_send(
        outbound()?,
        &row.kind,
        &url,
        secret.as_deref(),
        &key.org_id,
        &row.name,
        "",
    )
    .await;
    let mut conn = s.pool.acquire().await?;
    super::audit(
        &mut conn,
        &key,
        "channel.test",
        serde_json::json!({"id": id, "name": row.name, "delivered": sent.delivered,
                           "status": sent.status, "error": sent.error}),
    )
    .await?;
    tracing::info!(channel_id = %id, org_id = %key.org_id, delivered = sent.delivered, "test notification");
    Ok(axum::Json(serde_json::json!({
        "delivered": sent.delivered,
        "status": sent.status,
        "error": sent.error,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::fields::field_error as field;
    use serde_json::json;

    fn v(body: Value) -> Result<Obj, ApiError> {
        validate(body.as_object().unwrap())
    }

    #[test]
    fn urls() {
        for ok in [
            "https://hooks.slack.com/services/T/B/x",
            "https://user@example.com",
            "http://8.8.8.8:8080/hook",
        ] {
            assert!(valid_url(ok), "{ok}");
            assert_eq!(check_destination(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://:80/",
            "https://a b",
            "hooks.slack.com",
            "",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn non_public_destinations_are_refused_naming_url() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://127.0.0.2:9/h",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]:80/",
            "http://2130706433/",
            "http://10.0.0.5/hook",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://localhost:8080/",
            "https://api.localhost/x",
            "http://0.0.0.0/",
        ] {
            for kind in ["slack", "discord", "webhook"] {
                let r = v(json!({"name": "a", "kind": kind, "url": url}));
                assert_eq!(field(r), "url", "{kind} {url}");
            }
        }
    }

    #[test]
    fn webhook_channels_get_a_secret() {
        let c = v(json!({"name": "ops", "kind": "webhook", "url": "https://x.test/h"})).unwrap();
        let secret = c["secret"].as_str().unwrap();
        assert!(secret.len() >= 64);
        let supplied = "s".repeat(40);
        let c = v(
            json!({"name": "ops", "kind": "webhook", "url": "https://x.test/h",
                         "secret": supplied}),
        )
        .unwrap();
        assert_eq!(c["secret"], json!(supplied));
        let c = v(json!({"name": "ops", "kind": "slack", "url": "https://x.test/h"})).unwrap();
        assert_eq!(c["secret"], Value::Null);
    }

    #[test]
    fn bad_channels_name_their_field() {
        let u = "https://x.test/h";
        assert_eq!(field(v(json!({"kind": "slack", "url": u}))), "name");
        assert_eq!(
            field(v(json!({"name": "a", "kind": "sms", "url": u}))),
            "kind"
        );
        assert_eq!(field(v(json!({"name": "a", "kind": "slack"}))), "url");
        assert_eq!(
            field(v(json!({"name": "a", "kind": "slack", "url": "x"}))),
            "url"
        );
        assert_eq!(
            field(v(
                json!({"name": "a", "kind": "webhook", "url": u, "secret": "short"})
            )),
            "secret"
        );
        assert_eq!(
            field(v(
                json!({"name": "a", "kind": "slack", "url": u, "secret": "s".repeat(40)})
            )),
            "secret"
        );
    }
}
