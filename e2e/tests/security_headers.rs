//! Browser-facing safety (issue 12, item 5): every answer of the gateway and
//! the query API carries the security headers, the dashboard runs under a
//! content security policy that allows only its own script, and CORS is off
//! unless origins are configured, then only for those.

use agentops_e2e::{Stack, StackOptions};
use anyhow::Result;
use reqwest::Method;

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_the_dashboard_its_policy() -> Result<()> {
    let stack = Stack::start("sec_headers", StackOptions::default()).await?;
    let q = &stack.query_url;
    let page = stack.http.get(format!("{q}/")).send().await?;
    let csp = header(&page, "content-security-policy").to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    assert!(
        !csp.split(';')
            .any(|d| d.trim().starts_with("script-src") && d.contains("'unsafe-inline'")),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("connect-src 'self'"));
    for r in [
        page,
        stack
            .http
            .get(format!("{q}/v1/metrics/overview"))
            .bearer_auth(&stack.read_key)
            .send()
            .await?,
        stack
            .http
            .get(format!("{q}/v1/metrics/overview"))
            .send()
            .await?, // 401
        stack
            .http
            .post(format!("{}/v1/events", stack.gateway_url))
            .bearer_auth(&stack.ingest_key)
            .body("{}")
            .send()
            .await?, // 400
        stack.http.get(format!("{q}/healthz")).send().await?,
    ] {
        let url = r.url().to_string();
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{url}");
        assert_eq!(header(&r, "referrer-policy"), "no-referrer", "{url}");
        assert_eq!(header(&r, "x-frame-options"), "DENY", "{url}");
        assert!(
            header(&r, "content-security-policy").contains("frame-ancestors 'none'"),
            "{url}"
        );
    }
    // CORS is off: a preflight from any page gets no permission.
    let pre = stack
        .http
        .request(Method::OPTIONS, format!("{q}/v1/metrics/overview"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await?;
    assert_eq!(header(&pre, "access-control-allow-origin"), "");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_configured_origins() -> Result<()> {
    let console = "https://console.example";
    let stack = Stack::start(
        "cors",
        StackOptions {
            env: vec![(
                "AGENTOPS_CORS_ALLOW_ORIGINS".into(),
                format!("{console},https://other.example"),
            )],
            ..Default::default()
        },
    )
    .await?;
    for base in [&stack.query_url, &stack.gateway_url] {
        let path = if base == &stack.query_url {
            "/v1/metrics/overview"
        } else {
            "/v1/events"
        };
        let pre = stack
            .http
            .request(Method::OPTIONS, format!("{base}{path}"))
            .header("origin", console)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await?;
        assert_eq!(pre.status(), 204, "{base}");
        assert_eq!(header(&pre, "access-control-allow-origin"), console);
        assert!(header(&pre, "access-control-allow-headers").contains("authorization"));
        let other = stack
            .http
            .request(Method::OPTIONS, format!("{base}{path}"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await?;
        assert_eq!(header(&other, "access-control-allow-origin"), "", "{base}");
    }
    let r = stack
        .http
        .get(format!("{}/v1/metrics/overview", stack.query_url))
        .header("origin", console)
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), console);
    assert!(header(&r, "vary").to_lowercase().contains("origin"));
    Ok(())
}
