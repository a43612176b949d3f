//! Credentials at rest: webhook signing secrets and Slack/Discord webhook
//! URLs (bearer credentials) are stored sealed with XChaCha20-Poly1305.
//!
//! A sealed value is the text `enc:v1:<key id>:<base64(nonce ‖ ciphertext)>`:
//! a random 24-byte nonce per value, the column's name (`notification_channels.url`)
//! as associated data (a value copied into another column does not open).
//! Keys come from `secrets.key` and/or `secrets.key_file`: entries
//! `<id>:<base64 of 32 bytes>` (or a bare base64 key, whose id is `k` + the
//! first 8 hex digits of its SHA-256), separated by commas or new lines
//! (`#` starts a comment in the file). The first entry is the current key:
//! new values are sealed with it; the others only open older values.
//! Rotation: put the new key first, keep the old one, restart, run
//! `agentops-query-api admin reencrypt-secrets` ([`reseal_channels`]), then
//! drop the old key.
//!
//! Without a key a component refuses to start, unless
//! `secrets.allow_plaintext` (development only) stores and reads values in
//! clear. A value without the `enc:` prefix is plaintext (written before
//! encryption, or in plaintext mode): it is still read, and sealed by the
//! startup sweep or `reencrypt-secrets`.
//!
//! Neither keys nor values are ever in a log or an error message.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::{Error, Result};

const PREFIX: &str = "enc:v1:";

/// `[secrets]` of the processors' and the query API's configuration.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretsConfig {
    /// Keys (`AGENTOPS_SECRETS__KEY`): `<id>:<base64 32 bytes>` entries,
    /// comma separated, the current one first.
    pub key: Option<String>,
    /// A file holding keys in the same form, one per line
    /// (`AGENTOPS_SECRETS__KEY_FILE`); read after `key`.
    pub key_file: Option<String>,
    /// Development only: with no key, store and read credentials in clear.
    pub allow_plaintext: bool,
}

impl fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// Why a stored value cannot be opened. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed with key `{0}`, which is not configured (secrets.key / secrets.key_file)")]
    UnknownKey(String),
    #[error("sealed value is damaged or does not belong to this column")]
    Damaged,
    #[error("sealed value found but no key is configured (plaintext mode)")]
    NoKeys,
}

/// The configured keys (ids only in `Debug`).
#[derive(Clone)]
pub struct Keys {
    /// Id of the key new values are sealed with; None in plaintext mode.
    current: Option<String>,
    keys: HashMap<String, Key>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One `id:base64` or bare base64 entry; the error never quotes the key.
fn parse_entry(entry: &str, n: usize) -> Result<(String, Key)> {
    let (id, b64) = match entry.split_once(':') {
        Some((id, b64)) => (Some(id.trim()), b64.trim()),
        None => (None, entry),
    };
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| Error::Config(format!("secrets key #{n}: not valid base64")))?;
    if bytes.len() != 32 {
        return Err(Error::Config(format!(
            "secrets key #{n}: {} bytes, expected 32 (e.g. `head -c 32 /dev/urandom | base64`)",
            bytes.len()
        )));
    }
    let id = match id {
        Some(id) if valid_id(id) => id.to_owned(),
        Some(_) => {
            return Err(Error::Config(format!(
                "secrets key #{n}: the id must be 1 to 32 of a-z, A-Z, 0-9, `-`, `_`"
            )))
        }
        None => format!("k{}", &hex::encode(Sha256::digest(&bytes))[..8]),
    };
    Ok((id, *Key::from_slice(&bytes)))
}

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

impl Keys {
    /// The keys of `config`; an error when there is none and plaintext is
    /// not allowed, or an entry is malformed.
    pub fn load(config: &SecretsConfig) -> Result<Keys> {
        let mut text = config.key.clone().unwrap_or_default();
        if let Some(path) = &config.key_file {
            let file = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("secrets.key_file {path}: cannot read it: {e}"))
            })?;
            text.push('\n');
            text.push_str(&file);
        }
        Self::parse(&text, config.allow_plaintext)
    }

    fn parse(text: &str, allow_plaintext: bool) -> Result<Keys> {
        let mut keys = HashMap::new();
        let mut current = None;
        for (i, entry) in entries(text).enumerate() {
            let (id, key) = parse_entry(entry, i + 1)?;
            if keys.insert(id.clone(), key).is_some() {
                return Err(Error::Config(format!("secrets: key id `{id}` given twice")));
            }
            current.get_or_insert(id);
        }
        if current.is_none() && !allow_plaintext {
            return Err(Error::Config(
                "no secrets key: set secrets.key (AGENTOPS_SECRETS__KEY=<id>:<base64 of 32 random \
                 bytes>) or secrets.key_file; webhook secrets and Slack/Discord URLs are stored \
                 encrypted with it. For development only, secrets.allow_plaintext=true stores \
                 them in clear"
                    .into(),
            ));
        }
        Ok(Keys { current, keys })
    }

    /// No key: values are stored and read in clear (development).
    pub fn plaintext() -> Keys {
        Keys {
            current: None,
            keys: HashMap::new(),
        }
    }

    /// The id new values are sealed with (None: plaintext mode).
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Seal `plain` for `column`; unchanged in plaintext mode.
    pub fn seal(&self, column: &str, plain: &str) -> String {
        let Some(id) = &self.current else {
            return plain.to_owned();
        };
        let cipher = XChaCha20Poly1305::new(&self.keys[id]);
        let nonce_bytes: [u8; 24] = rand::random();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: column.as_bytes(),
        };
        #[allow(
            clippy::expect_used,
            reason = "encryption fails only past 256 GiB of plaintext"
        )]
        let sealed = cipher
            .encrypt(nonce, payload)
            .expect("XChaCha20-Poly1305 encrypts any value of a few KiB");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{id}:{}", STANDARD.encode(out))
    }

    /// Open a stored value of `column` (a plaintext one is returned as is).
    pub fn open(&self, column: &str, stored: &str) -> Result<String, OpenError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        if self.keys.is_empty() {
            return Err(OpenError::NoKeys);
        }
        let (id, b64) = rest.split_once(':').ok_or(OpenError::Damaged)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let bytes = STANDARD.decode(b64).map_err(|_| OpenError::Damaged)?;
        if bytes.len() < 24 + 16 {
            return Err(OpenError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = XChaCha20Poly1305::new(key)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Damaged)?;
        String::from_utf8(plain).map_err(|_| OpenError::Damaged)
    }

    /// Whether a stored value is sealed with the current key (always true
    /// in plaintext mode: there is nothing to seal with).
    pub fn is_current(&self, stored: &str) -> bool {
        match &self.current {
            None => true,
            Some(id) => stored
                .strip_prefix(PREFIX)
                .and_then(|r| r.split_once(':'))
                .is_some_and(|(k, _)| k == id),
        }
    }
}

/// A 32-byte key in the form `secrets.key` takes: `<id>:<base64>`.
pub fn new_key(id: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{id}:{}", STANDARD.encode(bytes))
}

/// What the API shows of a channel URL: scheme, host and port, the rest
/// (path, query, user info: the credential of a Slack or Discord URL) as `…`.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let tail = if rest.len() > authority.len() || authority.contains('@') {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{tail}")
}

/// Columns of `notification_channels` holding credentials.
pub const CHANNEL_URL: &str = "notification_channels.url";
pub const CHANNEL_SECRET: &str = "notification_channels.secret";

/// What a sweep over the channels did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Rows rewritten (sealed with the current key, or their masked URL filled in).
    pub rows: u64,
    /// Rows left as they are: sealed with a key that is not configured.
    pub unreadable: u64,
}

/// Seal every channel's URL and secret with the current key: plaintext
/// values (`only_plaintext`: only those, the startup sweep; otherwise also
/// values under an older key, the rotation) and missing masked URLs. Each
/// row is rewritten only if unchanged meanwhile (compare and set), so
/// concurrent sweeps and API writes are safe. Never logs a value.
pub async fn reseal_channels(pool: &PgPool, keys: &Keys, only_plaintext: bool) -> Result<Resealed> {
    #[derive(sqlx::FromRow)]
    struct ChannelRow {
        id: uuid::Uuid,
        url: String,
        secret: Option<String>,
        url_hint: Option<String>,
    }
    let rows: Vec<ChannelRow> =
        sqlx::query_as("SELECT id, url, secret, url_hint FROM notification_channels")
            .fetch_all(pool)
            .await?;
    let mut out = Resealed::default();
    for ChannelRow {
        id,
        url,
        secret,
        url_hint: hint,
    } in rows
    {
        let stale = |v: &str| {
            if only_plaintext {
                !v.starts_with(PREFIX) && keys.current.is_some()
            } else {
                !keys.is_current(v)
            }
        };
        let needs = stale(&url) || secret.as_deref().is_some_and(stale) || hint.is_none();
        if !needs {
            continue;
        }
        let (plain_url, plain_secret) = match (
            keys.open(CHANNEL_URL, &url),
            secret
                .as_deref()
                .map(|s| keys.open(CHANNEL_SECRET, s))
                .transpose(),
        ) {
            (Ok(u), Ok(s)) => (u, s),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(channel_id = %id, error = %e, "channel credentials left sealed as they are");
                out.unreadable += 1;
                continue;
            }
        };
        let reseal = |column: &str, stored: &str, plain: &str| {
            if stale(stored) {
                keys.seal(column, plain)
            } else {
                stored.to_owned()
            }
        };
        let new_url = reseal(CHANNEL_URL, &url, &plain_url);
        let new_secret = secret
            .as_deref()
            .zip(plain_secret.as_deref())
            .map(|(s, p)| reseal(CHANNEL_SECRET, s, p));
        let done = sqlx::query(
            "UPDATE notification_channels SET url = $2, secret = $3, url_hint = $4
             WHERE id = $1 AND url = $5 AND secret IS NOT DISTINCT FROM $6",
        )
        .bind(id)
        .bind(&new_url)
        .bind(&new_secret)
        .bind(mask_url(&plain_url))
        .bind(&url)
        .bind(&secret)
        .execute(pool)
        .await?
        .rows_affected();
        out.rows += done;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Keys {
        Keys::parse(text, false).unwrap()
    }

    #[test]
    fn seal_and_open_with_the_current_key_and_older_ones() {
        let (k1, k2) = (new_key("k1"), new_key("k2"));
        let old = keys(&k1);
        let sealed = old.seal(CHANNEL_SECRET, "whsec_abc");
        assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
        assert!(!sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            old.seal(CHANNEL_SECRET, "whsec_abc"),
            "random nonce"
        );
        assert_eq!(old.open(CHANNEL_SECRET, &sealed).unwrap(), "whsec_abc");

        let both = keys(&format!("{k2},{k1}"));
        assert_eq!(both.current_id(), Some("k2"));
        assert_eq!(both.open(CHANNEL_SECRET, &sealed).unwrap(), "whsec_abc");
        assert!(!both.is_current(&sealed));
        assert!(both.is_current(&both.seal(CHANNEL_SECRET, "x")));

        let new_only = keys(&k2);
        assert_eq!(
            new_only.open(CHANNEL_SECRET, &sealed),
            Err(OpenError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn a_value_opens_only_in_its_column_and_undamaged() {
        let k = keys(&new_key("a"));
        let sealed = k.seal(CHANNEL_URL, "https://hooks.slack.com/services/T/B/x");
        assert_eq!(k.open(CHANNEL_SECRET, &sealed), Err(OpenError::Damaged));
        let mut damaged = sealed.clone();
        damaged.replace_range(damaged.len() - 4.., "AAAA");
        assert_eq!(k.open(CHANNEL_URL, &damaged), Err(OpenError::Damaged));
        assert_eq!(k.open(CHANNEL_URL, "enc:v1:a:!!"), Err(OpenError::Damaged));
    }

    #[test]
    fn plaintext_values_are_read_as_they_are() {
        let k = keys(&new_key("a"));
        assert_eq!(
            k.open(CHANNEL_URL, "https://x.test/h").unwrap(),
            "https://x.test/h"
        );
        assert!(!k.is_current("https://x.test/h"));
        let p = Keys::plaintext();
        assert_eq!(p.seal(CHANNEL_URL, "https://x.test/h"), "https://x.test/h");
        assert_eq!(
            p.open(CHANNEL_URL, &k.seal(CHANNEL_URL, "u")),
            Err(OpenError::NoKeys)
        );
    }

    #[test]
    fn configuration_errors_are_clear_and_never_quote_a_key() {
        let err = |t: &str| Keys::parse(t, false).unwrap_err().to_string();
        assert!(err("").contains("no secrets key"), "{}", err(""));
        assert!(Keys::parse("", true).unwrap().current_id().is_none());
        let short = STANDARD.encode([7u8; 16]);
        let e = err(&format!("k1:{short}"));
        assert!(
            e.contains("16 bytes, expected 32") && !e.contains(&short),
            "{e}"
        );
        assert!(err("k1:not*base64").contains("not valid base64"));
        let k = new_key("x");
        assert!(err(&format!("{k},{k}")).contains("given twice"));
        assert!(err(&format!("bad id!{}", &k[1..])).contains("id must be"));
        // A bare key gets a fingerprint id; comments and lines in files.
        let bare = STANDARD.encode([1u8; 32]);
        let parsed = keys(&format!("# rotated 2026-12\n{bare}\n{k} # old\n"));
        assert!(parsed.current_id().unwrap().starts_with('k'));
        assert_eq!(parsed.keys.len(), 2);
        assert!(!format!("{parsed:?}").contains(&bare));
    }

    #[test]
    fn masked_urls_keep_only_scheme_host_and_port() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/XyZ"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("https://discord.com/api/webhooks/1/tok?wait=true"),
            "https://discord.com/…"
        );
        assert_eq!(
            mask_url("http://u:p@10.0.0.1:8080"),
            "http://10.0.0.1:8080/…"
        );
        assert_eq!(mask_url("https://example.com"), "https://example.com");
    }
}
