//! The operator console (`query-api/console/`, a TypeScript app built with
//! Vite into `console_dir`), served under `/console/`:
//!
//! - `/console/assets/<file>`: the build's content-hashed files, cached for
//!   a year (`immutable`: a new build has new names);
//! - any other path under `/console/`: `index.html`, never cached (so a
//!   deploy is seen at the next load), under a content security policy that
//!   allows only this origin's scripts and styles;
//! - no build in `console_dir`: a 503 page saying how to build it.
//!
//! Public: the page holds no data; the API calls it makes need a key.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::routes::{Access, Routes};

/// Where the build is read from when none was set (`up.sh` and the tests
/// run from the repository root).
pub(crate) const DEFAULT_DIR: &str = "query-api/console/dist";

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Serve the build in `dir` (before serving; the first call wins).
pub(crate) fn set_dir(dir: &Path) {
    if DIR.set(dir.to_owned()).is_err() {
        tracing::warn!("console directory already set; the first one stays");
    }
}

fn dir() -> &'static Path {
    DIR.get_or_init(|| PathBuf::from(DEFAULT_DIR))
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub(crate) fn routes() -> Routes {
    let public = [(Method::GET, Access::Public)];
    Routes::new()
        .add(
            "/console",
            &public,
            get(|| async { Redirect::permanent("/console/") }),
        )
        .add("/console/", &public, get(|| page(None)))
        .add(
            "/console/{*path}",
            &public,
            get(|UrlPath(path): UrlPath<String>| page(Some(path))),
        )
}

/// A built asset's name: one segment of `[A-Za-z0-9._-]`, not hidden.
fn asset_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("assets/")?;
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(name)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "json" | "map" => "application/json",
        _ => "application/octet-stream",
    }
}

async fn page(path: Option<String>) -> Response {
    if let Some(path) = path.as_deref().filter(|p| p.starts_with("assets/")) {
        let read = match asset_name(path) {
            Some(name) => tokio::fs::read(dir().join("assets").join(name))
                .await
                .map(|bytes| (name, bytes)),
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        return match read {
            Ok((name, bytes)) => (
                [
                    (header::CONTENT_TYPE, content_type(name)),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                bytes,
            )
                .into_response(),
            Err(_) => (
                StatusCode::NOT_FOUND,
                [(header::CACHE_CONTROL, "no-store")],
                "no such console asset",
            )
                .into_response(),
        };
    }
    match tokio::fs::read(dir().join("index.html")).await {
        Ok(html) => {
            let mut r = (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                html,
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            r
        }
        Err(e) => {
            tracing::warn!(dir = %dir().display(), error = %e, "console not built");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                format!(
                    "<!doctype html><title>AgentOps console not built</title>\
                     <h1>The console is not built</h1>\
                     <p>The query API serves it from <code>{}</code> (setting <code>console_dir</code>), \
                     which has no <code>index.html</code>. Build it with \
                     <code>cd query-api/console &amp;&amp; npm ci &amp;&amp; npm run build</code> \
                     (<code>deploy/local/up.sh</code> does). The API itself works.</p>",
                    html_escape(&dir().display().to_string())
                ),
            )
                .into_response()
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_asset_names_are_served() {
        assert_eq!(asset_name("assets/index-CKJ.js"), Some("index-CKJ.js"));
        assert_eq!(asset_name("assets/../config.toml"), None);
        assert_eq!(asset_name("assets/a/b.js"), None);
        assert_eq!(asset_name("assets/.env"), None);
        assert_eq!(asset_name("assets/"), None);
        assert_eq!(asset_name("runs/123"), None);
        assert_eq!(content_type("x.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.css"), "text/css; charset=utf-8");
    }
}
