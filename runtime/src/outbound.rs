//! The outbound guard: every HTTP request made on an org's behalf
//! (notification channels, digests, test sends, any future integration)
//! goes through [`Outbound`], so an org admin can reach only the public
//! internet through us, plus what the operator allows.
//!
//! - The host is resolved by a [`reqwest::dns::Resolve`] that keeps only
//!   allowed addresses, and the connection is made to exactly those: there
//!   is no second lookup between the check and the connect.
//! - reqwest does not call the resolver for an IP-literal URL, so literal
//!   hosts (every form the URL parser normalizes, `http://2130706433/`,
//!   `http://[::ffff:127.0.0.1]/` included) are checked before sending.
//! - Denied: loopback, private, shared (CGNAT), link-local and cloud
//!   metadata, unique-local, multicast, unspecified, broadcast,
//!   documentation, benchmarking and reserved blocks, and the IPv6 forms
//!   embedding such an IPv4 address ([`classify`]).
//! - No redirects are followed, no proxy from the environment is used, the
//!   response body read is capped, connect and total time are bounded.
//! - The operator's allowlist (`notify.allow_destinations`: CIDRs,
//!   addresses, exact host names) admits on-premises receivers; empty by
//!   default, so everything non-public is refused.

mod ranges;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde::{Deserialize, Serialize};

pub use ranges::{classify, embedded_v4, Range};

use crate::{Error, Result};

/// Settings of outbound requests made on an org's behalf (`notify.*`: the
/// processors use all of them, the query API the allowlist, to refuse
/// channels at creation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundConfig {
    /// Destinations allowed although not public: CIDRs (`10.20.0.0/16`,
    /// `fd00:1::/64`), single addresses, or exact host names
    /// (`hooks.corp.example`, whose every address is then allowed). A list,
    /// or one comma-separated string (`AGENTOPS_NOTIFY__ALLOW_DESTINATIONS=
    /// 127.0.0.2/32,hooks.corp.example`). Empty (the default): none.
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub allow_destinations: Vec<String>,
    /// Bound on establishing one connection (ms).
    pub connect_timeout_ms: u64,
    /// Most bytes of a response body read (the rest is discarded unread).
    pub max_response_bytes: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_destinations: Vec::new(),
            connect_timeout_ms: 5_000,
            max_response_bytes: 64 * 1024,
        }
    }
}

/// Why a destination was refused. `Display` is for operators (logs, the
/// DLQ); [`Refused::reason`] is what an org may see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not an absolute http(s) URL with a host")]
    NotHttp,
    #[error("{ip} is a {range} address")]
    Address { ip: IpAddr, range: Range },
    #[error("`localhost` names are not public destinations")]
    LocalName,
    #[error("the host resolves only to non-public addresses ({addresses:?})")]
    Resolved {
        range: Range,
        addresses: Vec<IpAddr>,
    },
}

impl Refused {
    /// The reason without addresses a name resolved to.
    pub fn reason(&self) -> String {
        match self {
            Refused::NotHttp => "not an http(s) URL".into(),
            Refused::Address { range, .. } => format!("{range} address"),
            Refused::LocalName => "localhost name".into(),
            Refused::Resolved { range, .. } => {
                format!("host resolves only to non-public addresses ({range})")
            }
        }
    }
}

/// The host name could not be resolved (or resolved to nothing).
#[derive(Debug, thiserror::Error)]
#[error("name resolution failed: {0}")]
pub struct ResolveFailed(String);

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Net(IpAddr, u8),
    Host(String),
}

fn parse_entry(s: &str) -> Result<Allowed> {
    let bad = |why: &str| Error::Config(format!("notify.allow_destinations entry {s:?}: {why}"));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(l.parse::<u8>().map_err(|_| bad("bad prefix length"))?),
        ),
        None => (s, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = addr.parse::<IpAddr>() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(bad("prefix length too long"));
        }
        return Ok(Allowed::Net(ip, len));
    }
    if len.is_some() {
        return Err(bad("not an IP network"));
    }
    let host = normalize_host(s);
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("expected a CIDR, an IP address or a host name"));
    }
    Ok(Allowed::Host(host))
}

fn normalize_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn net_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    let (net, ip, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        // An IPv4 network also admits the IPv4-mapped form of its addresses.
        (IpAddr::V4(_), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
            Some(v4) => return net_contains(net, len, IpAddr::V4(v4)),
            None => return false,
        },
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    let shift = bits - u32::from(len);
    len == 0 || (net >> shift) == (ip >> shift)
}

enum Host<'a> {
    None,
    Ip(IpAddr),
    Name(&'a str),
}

/// The URL's host: the parser has already normalized every IPv4 spelling
/// (`2130706433`, `0x7f.1`) to dotted decimal and put IPv6 in brackets.
fn literal_host(url: &Url) -> Host<'_> {
    match url.host_str() {
        None | Some("") => Host::None,
        Some(h) => {
            let bare = h.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            match bare.unwrap_or(h).parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(h),
            }
        }
    }
}

/// The address check and the operator's allowlist. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Arc<Vec<Allowed>>,
}

impl Guard {
    /// A guard with the operator's allowlist; an entry that is neither a
    /// CIDR, an address nor a host name is a configuration error.
    pub fn new(allow_destinations: &[String]) -> Result<Guard> {
        let allow = allow_destinations
            .iter()
            .map(|s| parse_entry(s.trim()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Guard {
            allow: Arc::new(allow),
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.allow
            .iter()
            .any(|a| matches!(a, Allowed::Host(h) if *h == host))
    }

    /// An address may be connected to: public, or inside an allowed network.
    pub fn check_ip(&self, ip: IpAddr) -> std::result::Result<(), Refused> {
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        let allowed = self
            .allow
            .iter()
            .any(|a| matches!(a, Allowed::Net(n, l) if net_contains(*n, *l, ip)));
        if allowed {
            Ok(())
        } else {
            Err(Refused::Address { ip, range })
        }
    }

    /// What can be known without resolving, before each request: an
    /// http(s) URL whose IP-literal host (never given to the resolver) is
    /// allowed. Names are judged by the resolver at connect time.
    pub fn check_url(&self, url: &Url) -> std::result::Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::NotHttp);
        }
        match literal_host(url) {
            Host::None => Err(Refused::NotHttp),
            Host::Ip(ip) => self.check_ip(ip),
            Host::Name(_) => Ok(()),
        }
    }

    /// The check made when a destination is configured (a channel is
    /// created): [`Guard::check_url`] plus `localhost` and `*.localhost`
    /// names (RFC 6761), which always resolve to loopback. A name that
    /// resolves only to denied addresses is refused at delivery.
    pub fn check_configured(&self, url: &str) -> std::result::Result<Url, Refused> {
        let parsed = Url::parse(url).map_err(|_| Refused::NotHttp)?;
        self.check_url(&parsed)?;
        if let Host::Name(d) = literal_host(&parsed) {
            let d = normalize_host(d);
            if (d == "localhost" || d.ends_with(".localhost")) && !self.host_allowed(&d) {
                return Err(Refused::LocalName);
            }
        }
        Ok(parsed)
    }

    /// Keep the allowed addresses of `host`'s resolution; refused when none is.
    fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = std::net::SocketAddr>,
    ) -> std::result::Result<Vec<std::net::SocketAddr>, Refused> {
        let all: Vec<_> = addrs.into_iter().collect();
        if self.host_allowed(host) {
            return Ok(all);
        }
        let mut first_refused = None;
        let kept: Vec<_> = all
            .iter()
            .copied()
            .filter(|a| match self.check_ip(a.ip()) {
                Ok(()) => true,
                Err(Refused::Address { range, .. }) => {
                    first_refused.get_or_insert(range);
                    false
                }
                Err(_) => false,
            })
            .collect();
        match (kept.is_empty(), first_refused) {
            (true, Some(range)) => Err(Refused::Resolved {
                range,
                addresses: all.iter().map(|a| a.ip()).collect(),
            }),
            _ => Ok(kept),
        }
    }
}

/// The resolver of guarded clients: the system resolver, then [`Guard`].
struct GuardedResolver {
    guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Boxed as themselves (not as a Box), so a request error's
            // source chain downcasts to them (see `Failure::from_reqwest`).
            let addrs = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveFailed(e.to_string()))?;
            let kept = guard.filter(&host, addrs)?;
            if kept.is_empty() {
                return Err(ResolveFailed("no addresses".into()).into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Why a request got no HTTP answer. [`Failure::class`] is the coarse class
/// an org may see (it cannot serve as a port-scan oracle); `Display` gives
/// the operator the detail (never the URL).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("refused destination: {0}")]
    Refused(Refused),
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

impl Failure {
    pub fn class(&self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused_destination",
            Failure::Dns(_) => "dns_error",
            Failure::Timeout(_) => "timeout",
            Failure::Connect(_) => "connect_error",
            Failure::Other(_) => "network_error",
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Failure {
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        let mut refused = None;
        let mut dns = false;
        while let Some(cause) = source {
            detail.push_str(&format!(": {cause}"));
            if let Some(r) = cause.downcast_ref::<Refused>() {
                refused.get_or_insert_with(|| r.clone());
            }
            dns |= cause.is::<ResolveFailed>();
            source = cause.source();
        }
        if let Some(r) = refused {
            Failure::Refused(r)
        } else if dns {
            Failure::Dns(detail)
        } else if e.is_timeout() {
            Failure::Timeout(detail)
        } else if e.is_connect() {
            Failure::Connect(detail)
        } else {
            Failure::Other(detail)
        }
    }
}

/// An HTTP answer: its status and headers (the body is read up to the cap
/// and discarded, so the connection can be reused).
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
}

/// A guarded HTTP client.
#[derive(Clone)]
pub struct Outbound {
    guard: Guard,
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl Outbound {
    /// `total`: bound on one request, connect to the last body byte read.
    pub fn new(cfg: &OutboundConfig, total: Duration, user_agent: &str) -> Result<Outbound> {
        Outbound::from_builder(cfg, client_builder(cfg, total, user_agent))
    }

    /// From a [`client_builder`] the caller adjusted (e.g. a benchmark
    /// turning connection reuse off); the guard's resolver is installed here.
    pub fn from_builder(cfg: &OutboundConfig, builder: reqwest::ClientBuilder) -> Result<Outbound> {
        let guard = Guard::new(&cfg.allow_destinations)?;
        let client = builder
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .build()
            .map_err(|e| Error::HttpClient(format!("outbound: {e}")))?;
        Ok(Outbound {
            guard,
            client,
            max_response_bytes: cfg.max_response_bytes,
        })
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// POST `body` to `url` if the destination is allowed.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> std::result::Result<Answer, Failure> {
        let url = Url::parse(url).map_err(|_| Failure::Refused(Refused::NotHttp))?;
        self.guard.check_url(&url).map_err(Failure::Refused)?;
        let req = self.client.post(url).headers(headers).body(body);
        let resp = req.send().await.map_err(Failure::from_reqwest)?;
        Ok(read_capped(resp, self.max_response_bytes).await)
    }
}

/// The client settings every outbound request has, guard aside: no
/// redirects, no proxy from the environment, connect and total timeouts.
/// Public so a benchmark can build the same client without the guard.
pub fn client_builder(
    cfg: &OutboundConfig,
    total: Duration,
    user_agent: &str,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms.max(1)))
        .timeout(total.max(Duration::from_millis(1)))
        .user_agent(user_agent)
}

/// Status and headers; at most `cap` body bytes are read, then dropped.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Answer {
    let (status, headers) = (resp.status(), resp.headers().clone());
    let mut read = 0usize;
    while read < cap {
        match resp.chunk().await {
            Ok(Some(c)) => read += c.len(),
            Ok(None) | Err(_) => break,
        }
    }
    Answer { status, headers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn guard(allow: &[&str]) -> Guard {
        Guard::new(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn literal_hosts_in_every_spelling_are_checked() {
        let g = guard(&[]);
        for (u, range) in [
            ("http://127.0.0.1:8080/hook", Range::Loopback),
            ("http://2130706433/", Range::Loopback),
            ("http://0x7f.1/", Range::Loopback),
            ("http://0177.0.0.1/", Range::Loopback),
            ("http://127.1/", Range::Loopback),
            ("http://[::1]/", Range::Loopback),
            ("http://[::ffff:127.0.0.1]/", Range::Loopback),
            ("http://[::ffff:7f00:1]/", Range::Loopback),
            ("http://10.1.2.3/", Range::Private),
            (
                "https://169.254.169.254/latest/meta-data/",
                Range::CloudMetadata,
            ),
            ("http://[fd00:ec2::254]/", Range::CloudMetadata),
            ("http://0.0.0.0:9/", Range::Unspecified),
            ("http://[64:ff9b::a9fe:a9fe]/", Range::CloudMetadata),
        ] {
            match g.check_url(&url(u)) {
                Err(Refused::Address { range: r, .. }) => assert_eq!(r, range, "{u}"),
                other => panic!("{u}: {other:?}"),
            }
        }
        assert_eq!(g.check_url(&url("https://8.8.8.8/")), Ok(()));
        assert_eq!(g.check_url(&url("https://hooks.slack.com/x")), Ok(()));
        assert_eq!(g.check_url(&url("ftp://8.8.8.8/")), Err(Refused::NotHttp));
    }

    #[test]
    fn configured_urls_also_refuse_localhost_names() {
        let g = guard(&[]);
        for u in [
            "http://localhost/",
            "http://LOCALHOST.:80/",
            "http://a.b.localhost/h",
        ] {
            assert_eq!(g.check_configured(u), Err(Refused::LocalName), "{u}");
        }
        assert!(g.check_configured("not a url").is_err());
        assert!(g
            .check_configured("https://hooks.slack.com/services/x")
            .is_ok());
        let g = guard(&["localhost"]);
        assert!(g.check_configured("http://localhost:9/").is_ok());
    }

    #[test]
    fn the_allowlist_admits_networks_addresses_and_hosts() {
        let g = guard(&[
            "127.0.0.2/32",
            "10.20.0.0/16",
            "fd00:1::/64",
            "hooks.corp.example.",
        ]);
        assert!(g.check_url(&url("http://127.0.0.2:9/")).is_ok());
        assert!(g.check_url(&url("http://[::ffff:127.0.0.2]:9/")).is_ok());
        assert!(g.check_url(&url("http://127.0.0.1:9/")).is_err());
        assert!(g.check_url(&url("http://10.20.255.1/")).is_ok());
        assert!(g.check_url(&url("http://10.21.0.1/")).is_err());
        assert!(g.check_url(&url("http://[fd00:1::5]/")).is_ok());
        assert!(g.check_url(&url("http://[fd00:2::5]/")).is_err());
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        // A host on the list keeps all its addresses; others only allowed ones.
        let lo = [a("127.0.0.1:0"), a("10.9.0.1:0")];
        assert_eq!(g.filter("HOOKS.corp.example", lo).unwrap().len(), 2);
        match g.filter("evil.example", lo) {
            Err(Refused::Resolved { range, addresses }) => {
                assert_eq!(range, Range::Loopback);
                assert_eq!(addresses.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let mixed = [a("127.0.0.1:0"), a("8.8.8.8:0"), a("10.20.0.7:0")];
        assert_eq!(
            g.filter("mixed.example", mixed).unwrap(),
            vec![a("8.8.8.8:0"), a("10.20.0.7:0")]
        );
        assert!(g.filter("none.example", []).unwrap().is_empty());
    }

    #[test]
    fn bad_allowlist_entries_are_configuration_errors() {
        for bad in ["10.0.0.0/33", "::/129", "host/24", "a b", "x..y", "*.corp"] {
            assert!(Guard::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(Guard::new(&["[::1]".to_owned(), "10.0.0.0/8".to_owned()]).is_ok());
    }

    #[test]
    fn reasons_never_name_resolved_addresses() {
        let r = Refused::Resolved {
            range: Range::Private,
            addresses: vec!["10.1.2.3".parse().unwrap()],
        };
        assert!(!r.reason().contains("10.1.2.3"));
        assert!(r.to_string().contains("10.1.2.3"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure returns figment::Error
    fn allowlist_from_env_list_or_comma_separated() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "AGENTOPS_NOTIFY__ALLOW_DESTINATIONS",
                "127.0.0.2/32, hooks.example",
            );
            #[derive(Default, Serialize, Deserialize)]
            #[serde(default)]
            struct C {
                notify: OutboundConfig,
            }
            let c: C = crate::config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                c.notify.allow_destinations,
                ["127.0.0.2/32", "hooks.example"]
            );
            jail.set_env(
                "AGENTOPS_NOTIFY__ALLOW_DESTINATIONS",
                "[\"127.0.0.2/32\",\"::1\"]",
            );
            let c: C = crate::config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.notify.allow_destinations, ["127.0.0.2/32", "::1"]);
            Ok(())
        });
    }
}
