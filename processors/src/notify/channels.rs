//! What a notification looks like on each channel, and the pure rules of
//! delivering it: the webhook signature, which answers are worth retrying,
//! and the backoff between attempts. No I/O here.
//!
//! Every message says what (kind, budget/rule/policy name), where (org,
//! scope), how much (value vs threshold, with its unit), when, and links to
//! the dashboard.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::alert::{Alert, Transition};

/// A notification channel's kind (`notification_channels.kind`).
pub(crate) use agentops_governance::channel::ChannelKind;

/// The parts every message is made of.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// `FIRING [warning] budget_exceeded: budget "eng daily" (acme)`.
    pub(crate) title: String,
    pub(crate) what: String,
    pub(crate) where_: String,
    pub(crate) how_much: String,
    pub(crate) when: String,
    /// `<dashboard_url>/?org=<org>`.
    pub(crate) link: String,
    /// The evaluator's one-line message.
    pub(crate) message: String,
    /// Extra lines (`details.lines`, e.g. the digest's runs and top agents).
    pub(crate) lines: Vec<String>,
}

/// The budget, rule or policy name, if the evaluator put it in `details`.
fn source_name(details: &Value) -> Option<&str> {
    [
        "name",
        "budget",
        "rule",
        "policy",
        "budget_name",
        "rule_name",
        "policy_name",
    ]
    .iter()
    .find_map(|k| details.get(*k).and_then(Value::as_str))
    .filter(|s| !s.is_empty())
}

/// The unit of `value`/`threshold`: `details.unit`, else USD for spend.
fn unit(alert: &Alert) -> String {
    if let Some(u) = alert.details.get("unit").and_then(Value::as_str) {
        return u.to_owned();
    }
    let spend = alert.source == "budget"
        || alert.source == "digest"
        || alert.kind.starts_with("budget")
        || alert.kind.contains("cost");
    if spend {
        "USD".into()
    } else {
        String::new()
    }
}

/// A figure with its unit: `$12.34`, `12.5%`, `850 ms`, `1200 tokens`.
pub(crate) fn amount(v: f64, unit: &str) -> String {
    match unit.to_ascii_lowercase().as_str() {
        "usd" | "$" => {
            if v != 0.0 && v.abs() < 0.01 {
                format!("${v:.4}")
            } else {
                format!("${v:.2}")
            }
        }
        "ratio" => format!("{:.1}%", v * 100.0),
        "percent" | "pct" | "%" => format!("{v:.1}%"),
        "ms" => format!("{v:.0} ms"),
        "" => trim_float(v),
        other => format!("{} {other}", trim_float(v)),
    }
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// `<base>/?org=<org>` with the org percent-encoded.
pub(crate) fn dashboard_link(base: &str, org: &str) -> String {
    let root = format!("{}/", base.trim_end_matches('/'));
    match reqwest::Url::parse(&root) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("org", org);
            url.to_string()
        }
        Err(_) => format!("{root}?org={org}"),
    }
}

pub(crate) fn summarize(alert: &Alert, transition: Transition, dashboard_url: &str) -> Summary {
    let name = source_name(&alert.details);
    let what = match name {
        Some(n) => format!("{} ({} \"{n}\")", alert.kind, alert.source),
        None => format!("{} ({})", alert.kind, alert.source),
    };
    let where_ = if alert.scope_key.is_empty() || alert.scope_key == "org" {
        format!("org {}", alert.org_id)
    } else {
        format!("org {}, scope {}", alert.org_id, alert.scope_key)
    };
    let unit = unit(alert);
    let violation = alert.details.get("detail").and_then(Value::as_str);
    let how_much = if let (true, Some(detail)) = (alert.source == "policy", violation) {
        detail.to_owned() // "model o3 is denied", "10200 tokens in one call, over 5000"
    } else if alert.source == "digest" {
        format!(
            "{} spent vs a 7-day average of {}",
            amount(alert.value, &unit),
            amount(alert.threshold, &unit)
        )
    } else {
        format!(
            "{} vs threshold {}",
            amount(alert.value, &unit),
            amount(alert.threshold, &unit)
        )
    };
    let mut when = alert
        .occurred_at
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    if !alert.period.is_empty() {
        when.push_str(&format!(" (period {})", alert.period));
    }
    let state = match transition {
        Transition::Firing => "FIRING",
        Transition::Resolved => "RESOLVED",
    };
    let title = match name {
        Some(n) => format!(
            "{state} [{}] {}: {} \"{n}\" ({})",
            alert.severity, alert.kind, alert.source, alert.org_id
        ),
        None => format!(
            "{state} [{}] {} ({})",
            alert.severity, alert.kind, alert.org_id
        ),
    };
    let lines = alert
        .details
        .get("lines")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Summary {
        title,
        what,
        where_,
        how_much,
        when,
        link: dashboard_link(dashboard_url, &alert.org_id),
        message: alert.message.clone(),
        lines,
    }
}

/// `@everyone`, `@here` and `@channel` with a zero-width space after the
/// `@`: they read the same and notify nobody.
fn defuse_mentions(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let word: String = rest
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        if ["everyone", "here", "channel"]
            .iter()
            .any(|w| word.starts_with(w))
        {
            out.push('\u{200B}');
        }
    }
    out.push_str(rest);
    out
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters: escaped, no
/// `<!channel>`, `<@U123>` or `<https://x|masked link>` can be injected.
fn slack_escape(s: &str) -> String {
    defuse_mentions(
        &s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    )
}

/// Discord markdown: every character that starts a mention (`<@id>`,
/// `<#id>`, `@everyone`), a masked link (`[text](url)`), a heading or
/// formatting is backslash-escaped, so the text shows as written.
fn discord_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '[' | ']' | '(' | ')' | '#' | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    defuse_mentions(&out)
}

/// A header value from any text: bytes outside visible ASCII (and `%`) are
/// percent-encoded, so an id with a newline or non-ASCII character still
/// makes a valid header (decode with any URL percent-decoder).
pub(crate) fn header_value(s: &str) -> reqwest::header::HeaderValue {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    reqwest::header::HeaderValue::from_str(&out)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""))
}

/// Cut to at most `max` characters (Slack and Discord reject longer fields).
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Slack incoming webhook: `text` (the fallback shown in notifications) and
/// blocks (a header, a mrkdwn section with what/where/how much/when and the
/// dashboard link, the evaluator's message as context).
pub(crate) fn slack_body(s: &Summary) -> Value {
    let mut section = format!(
        "*What:* {}\n*Where:* {}\n*How much:* {}\n*When:* {}",
        slack_escape(&s.what),
        slack_escape(&s.where_),
        slack_escape(&s.how_much),
        slack_escape(&s.when)
    );
    for l in &s.lines {
        section.push('\n');
        section.push_str(&slack_escape(l));
    }
    section.push_str(&format!("\n<{}|Open in AgentOps>", s.link));
    json!({
        "text": clip(
            &slack_escape(&format!("{} — {} {}", s.title, s.message, s.link)),
            3000
        ),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(&s.title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(&section, 3000)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": clip(&slack_escape(&s.message), 3000)}
            ]}
        ]
    })
}

/// Embed colour: green once resolved, else by severity.
fn discord_color(severity: &str, transition: Transition) -> u32 {
    match (transition, severity) {
        (Transition::Resolved, _) => 0x2E_B6_7D,
        (_, "critical") => 0xE0_1E_5A,
        (_, "warning") => 0xEC_B2_2E,
        _ => 0x36_C5_F0,
    }
}

/// Discord webhook: `content` plus one embed (title, description, colour,
/// fields, url to the dashboard).
pub(crate) fn discord_body(s: &Summary, alert: &Alert, transition: Transition) -> Value {
    let field = |name: &str, value: &str, inline: bool| json!({"name": name, "value": clip(&discord_escape(value), 1024), "inline": inline});
    let mut fields = vec![
        field("What", &s.what, false),
        field("Where", &s.where_, true),
        field("How much", &s.how_much, true),
        field("When", &s.when, false),
    ];
    if !s.lines.is_empty() {
        fields.push(field("Details", &s.lines.join("\n"), false));
    }
    json!({
        "content": clip(&discord_escape(&s.title), 2000),
        // Nobody is pinged, whatever the text holds.
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": clip(&s.title, 256),
            "description": clip(&format!("{}\n{}", discord_escape(&s.message), s.link), 4096),
            "color": discord_color(&alert.severity, transition),
            "fields": fields,
            "url": s.link,
            "timestamp": alert.occurred_at.to_rfc3339(),
        }]
    })
}

/// Generic webhook: every alert field, the transition being delivered, and
/// `dashboard_url` (the link for this org).
pub(crate) fn webhook_body(s: &Summary, alert: &Alert, transition: Transition) -> Value {
    let mut body = serde_json::to_value(alert).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut body {
        m.insert("transition".into(), json!(transition.as_str()));
        m.insert("dashboard_url".into(), json!(s.link));
        m.insert("title".into(), json!(s.title));
    }
    body
}

/// The JSON body for `kind`.
pub(crate) fn body(
    kind: ChannelKind,
    alert: &Alert,
    transition: Transition,
    dashboard_url: &str,
) -> Value {
    let s = summarize(alert, transition, dashboard_url);
    match kind {
        ChannelKind::Slack => slack_body(&s),
        ChannelKind::Discord => discord_body(&s, alert, transition),
        ChannelKind::Webhook => webhook_body(&s, alert, transition),
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`; the key is
/// the secret string's bytes as stored (not hex-decoded).
pub(crate) fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How an HTTP answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Delivered,
    /// Worth another attempt: 408, 429, 5xx, network errors.
    Transient,
    /// Will not get better: other 4xx, redirects (not followed).
    Permanent,
}

/// The coarse class of a non-2xx answer kept in the delivery row.
pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        300..=399 => "http_3xx",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

pub(crate) fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Delivered,
        408 | 429 | 500..=599 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Delay after the `failed`-th failed attempt (1-based): `base * 2^(failed-1)`
/// capped at `cap`, then "equal jitter": half of it fixed, the other half
/// scaled by `jitter` in [0, 1].
pub(crate) fn backoff(failed: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = failed.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A `Retry-After` header in seconds (Slack and Discord send it with 429).
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: f64 = value?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        serde_json::from_value(json!({
            "alert_id": "budget:acme:b1:2026-11-22:100",
            "org_id": "acme",
            "source": "budget",
            "source_id": "6f1c1f0e-8a47-4a0b-9f57-3f6f0c7c2b11",
            "kind": "budget_exceeded",
            "scope_key": "agent=a1",
            "transition": "firing",
            "severity": "critical",
            "period": "2026-11-22",
            "threshold": 10.0,
            "value": 12.345,
            "message": "Budget eng daily: $12.35 of $10.00 spent",
            "details": {"name": "eng daily", "unit": "USD"},
            "channels": [],
            "occurred_at": "2026-11-22T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn summary_says_what_where_how_much_when_and_links() {
        let s = summarize(&alert(), Transition::Firing, "http://dash.example/");
        assert_eq!(s.what, "budget_exceeded (budget \"eng daily\")");
        assert_eq!(s.where_, "org acme, scope agent=a1");
        assert_eq!(s.how_much, "$12.35 vs threshold $10.00");
        assert_eq!(s.when, "2026-11-22 10:00:00 UTC (period 2026-11-22)");
        assert_eq!(s.link, "http://dash.example/?org=acme");
        assert!(s.title.starts_with("FIRING [critical] budget_exceeded"));
        let r = summarize(&alert(), Transition::Resolved, "http://d");
        assert!(r.title.starts_with("RESOLVED"));
        // The evaluators name their source under its kind.
        let mut a = alert();
        a.source = "rule".into();
        a.details = json!({"rule": "errors", "unit": "ratio"});
        assert_eq!(
            summarize(&a, Transition::Firing, "http://d").what,
            "budget_exceeded (rule \"errors\")"
        );
        // A policy violation says what it found instead of figures.
        a.source = "policy".into();
        a.details = json!({"policy": "no-o3", "detail": "model o3 is denied"});
        assert_eq!(
            summarize(&a, Transition::Firing, "http://d").how_much,
            "model o3 is denied"
        );
    }

    #[test]
    fn amounts_carry_their_unit() {
        assert_eq!(amount(0.25, "ratio"), "25.0%");
        assert_eq!(amount(80.0, "percent"), "80.0%");
        assert_eq!(amount(850.4, "ms"), "850 ms");
        assert_eq!(amount(1200.0, "tokens"), "1200 tokens");
        assert_eq!(amount(0.004, "USD"), "$0.0040");
        assert_eq!(amount(3.0, ""), "3");
        assert_eq!(
            dashboard_link("http://d/x/", "a b&c"),
            "http://d/x/?org=a+b%26c"
        );
    }

    #[test]
    fn slack_shape() {
        let b = body(ChannelKind::Slack, &alert(), Transition::Firing, "http://d");
        assert!(b["text"].as_str().unwrap().contains("budget_exceeded"));
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        let text = blocks[1]["text"]["text"].as_str().unwrap();
        for part in [
            "*What:*",
            "*Where:*",
            "*How much:* $12.35 vs threshold $10.00",
            "*When:*",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(
            text.contains("<http://d/?org=acme|Open in AgentOps>"),
            "{text}"
        );
    }

    #[test]
    fn slack_escapes_control_characters() {
        let mut a = alert();
        a.details = json!({"name": "<!channel> & co"});
        let b = body(ChannelKind::Slack, &a, Transition::Firing, "http://d");
        let text = b["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
    }

    /// An alert whose every text field carries mention and link injections.
    fn hostile() -> Alert {
        let mut a = alert();
        a.org_id = "acme".into();
        a.scope_key = "agent=<@U024BE7LH> [click](https://evil.example)".into();
        a.message = "<!channel> @everyone @here see <https://evil.example|docs>".into();
        a.details = json!({"name": "<!here> [x](https://evil.example) <@&123> <#456>", "unit": "USD",
                           "lines": ["@channel <!subteam^S1>"]});
        a
    }

    /// Every text a Slack client renders as mrkdwn.
    fn slack_texts(b: &Value) -> Vec<String> {
        vec![
            b["text"].as_str().unwrap().to_owned(),
            b["blocks"][1]["text"]["text"].as_str().unwrap().to_owned(),
            b["blocks"][2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        ]
    }

    #[test]
    fn slack_text_cannot_mention_or_mask_links() {
        let b = body(
            ChannelKind::Slack,
            &hostile(),
            Transition::Firing,
            "http://d",
        );
        for t in slack_texts(&b) {
            for injected in ["<!", "<@", "<#", "|docs>", "<https://evil"] {
                assert!(!t.contains(injected), "{injected} in {t}");
            }
            for word in ["@everyone", "@here", "@channel"] {
                assert!(!t.contains(word), "{word} in {t}");
            }
        }
        let top = b["text"].as_str().unwrap();
        assert!(top.contains("&lt;!channel&gt;"), "{top}");
        assert!(top.contains("@\u{200B}everyone"), "{top}");
        // The link to the dashboard still works.
        assert!(top.ends_with("http://d/?org=acme"), "{top}");
    }

    #[test]
    fn discord_text_cannot_mention_or_mask_links() {
        let b = body(
            ChannelKind::Discord,
            &hostile(),
            Transition::Firing,
            "http://d",
        );
        assert_eq!(b["allowed_mentions"], json!({"parse": []}));
        let e = &b["embeds"][0];
        let mut texts = vec![
            b["content"].as_str().unwrap().to_owned(),
            e["description"].as_str().unwrap().to_owned(),
        ];
        for f in e["fields"].as_array().unwrap() {
            texts.push(f["value"].as_str().unwrap().to_owned());
        }
        assert_eq!(texts.len(), 7, "content, description and 5 fields");
        for t in &texts {
            // Every specials is preceded by a backslash: no mention, no link.
            for (i, c) in t.char_indices() {
                if "<>[]()@#".contains(c) {
                    assert!(t[..i].ends_with('\\'), "unescaped {c:?} in {t}");
                }
            }
            assert!(!t.contains("](https://evil"), "{t}");
        }
        let content = b["content"].as_str().unwrap();
        assert!(
            content.contains("\\<\\!here\\>") || content.contains("\\<!here\\>"),
            "{content}"
        );
        assert!(e["description"]
            .as_str()
            .unwrap()
            .ends_with("\nhttp://d/?org=acme"));
    }

    #[test]
    fn header_values_are_always_valid() {
        assert_eq!(
            header_value("budget:acme:b1:2026-11-22:100"),
            "budget:acme:b1:2026-11-22:100"
        );
        for id in [
            "rule:r1:agent=a\nb",
            "x\r\nX-Injected: 1",
            "agent=é✓",
            "50% off",
            "a b\t\0",
        ] {
            let v = header_value(id);
            let text = v.to_str().unwrap();
            assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{text:?}");
            // Reversible: percent-decoding gives the id back.
            let mut decoded = Vec::new();
            let bytes = text.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    decoded.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
            assert_eq!(String::from_utf8(decoded).unwrap(), id);
        }
        assert_eq!(header_value("a\nb"), "a%0Ab");
    }

    #[test]
    fn error_classes_are_coarse() {
        assert_eq!(status_class(302), "http_3xx");
        assert_eq!(status_class(404), "http_4xx");
        assert_eq!(status_class(429), "http_4xx");
        assert_eq!(status_class(503), "http_5xx");
        assert_eq!(status_class(101), "http_other");
    }

    #[test]
    fn discord_shape() {
        let b = body(
            ChannelKind::Discord,
            &alert(),
            Transition::Firing,
            "http://d",
        );
        // Markdown specials are escaped in the content.
        assert!(b["content"].as_str().unwrap().contains("budget\\_exceeded"));
        let e = &b["embeds"][0];
        assert!(e["title"].as_str().unwrap().contains("eng daily"));
        assert_eq!(e["color"], 0xE0_1E_5A);
        assert_eq!(e["url"], "http://d/?org=acme");
        let names: Vec<&str> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["What", "Where", "How much", "When"]);
        let resolved = body(
            ChannelKind::Discord,
            &alert(),
            Transition::Resolved,
            "http://d",
        );
        assert_eq!(resolved["embeds"][0]["color"], 0x2E_B6_7D);
    }

    #[test]
    fn webhook_shape_is_the_alert_plus_link() {
        let b = body(
            ChannelKind::Webhook,
            &alert(),
            Transition::Resolved,
            "http://d",
        );
        assert_eq!(b["alert_id"], "budget:acme:b1:2026-11-22:100");
        assert_eq!(b["value"], 12.345);
        assert_eq!(b["threshold"], 10.0);
        assert_eq!(b["details"]["name"], "eng daily");
        assert_eq!(b["transition"], "resolved");
        assert_eq!(b["dashboard_url"], "http://d/?org=acme");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // python3: hmac.new(b"whsec_test_secret", b'1700000000.{"alert_id":"a1"}', sha256).hexdigest()
        assert_eq!(
            signature("whsec_test_secret", 1_700_000_000, br#"{"alert_id":"a1"}"#),
            "sha256=9d93e021dc539f54719498e0ecf0f38da1ceb06fde8c3011fa317f5820de6442"
        );
    }

    #[test]
    fn permanent_and_transient_answers() {
        assert_eq!(classify(200), Class::Delivered);
        assert_eq!(classify(204), Class::Delivered);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), Class::Transient, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(classify(s), Class::Permanent, "{s}");
        }
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_millis(250);
        let cap = Duration::from_secs(30);
        let expected = [250u64, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
        for (i, full) in expected.iter().enumerate() {
            let failed = i as u32 + 1;
            let lo = backoff(failed, base, cap, 0.0);
            let hi = backoff(failed, base, cap, 1.0);
            assert_eq!(lo, Duration::from_millis(full / 2), "attempt {failed}");
            assert_eq!(hi, Duration::from_millis(*full), "attempt {failed}");
            let mid = backoff(failed, base, cap, 0.5);
            assert!(lo <= mid && mid <= hi);
        }
        assert_eq!(backoff(1000, base, cap, 1.0), cap);
    }
}
