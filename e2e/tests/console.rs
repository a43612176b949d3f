//! The operator console's build is served by the query API under
//! `/console/` from `console_dir`: the page never cached and under its
//! policy, content-hashed assets cached for a year, client-side routes
//! answered with the page, nothing outside the build, and a clear 503 page
//! when there is no build.

use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::Result;

fn only_the_query_api(console_dir: &str) -> StackOptions {
    StackOptions {
        skip: vec![
            Component::Gateway,
            Component::Processors,
            Component::Projections,
        ],
        env: vec![("AGENTOPS_CONSOLE_DIR".into(), console_dir.into())],
        ..Default::default()
    }
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_build_is_served_with_cache_headers_and_a_page_when_missing() -> Result<()> {
    let build = std::env::temp_dir().join(format!("console-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(build.join("assets"))?;
    std::fs::write(
        build.join("index.html"),
        r#"<!doctype html><script type="module" src="/console/assets/index-abc123.js"></script>"#,
    )?;
    std::fs::write(build.join("assets/index-abc123.js"), "console.log(1)")?;
    std::fs::write(build.join("secret.txt"), "not for you")?;
    let stack = Stack::start("console", only_the_query_api(&build.display().to_string())).await?;
    let q = &stack.query_url;

    for path in ["/console/", "/console/runs/r-1?window=7d"] {
        let page = stack.http.get(format!("{q}{path}")).send().await?;
        assert_eq!(page.status(), 200, "{path}");
        assert_eq!(header(&page, "cache-control"), "no-cache", "{path}");
        let csp = header(&page, "content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(page.text().await?.contains("index-abc123.js"), "{path}");
    }
    let asset = stack
        .http
        .get(format!("{q}/console/assets/index-abc123.js"))
        .send()
        .await?;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        header(&asset, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(header(&asset, "content-type").starts_with("text/javascript"));
    assert_eq!(asset.text().await?, "console.log(1)");
    // Nothing outside assets/ is read as a file; unknown assets are 404.
    for path in [
        "/console/assets/missing.js",
        "/console/assets/..%2Fsecret.txt",
    ] {
        let r = stack.http.get(format!("{q}{path}")).send().await?;
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = stack
        .http
        .get(format!("{q}/console/secret.txt"))
        .send()
        .await?;
    assert!(!r.text().await?.contains("not for you"));
    let r = stack.http.get(format!("{q}/console")).send().await?;
    assert_eq!(r.url().path(), "/console/", "redirected to the page");
    drop(stack);

    // No build: a 503 page that says how to build it; the API still works.
    let empty = build.join("nothing-here");
    let stack = Stack::start(
        "console_missing",
        only_the_query_api(&empty.display().to_string()),
    )
    .await?;
    let r = stack
        .http
        .get(format!("{}/console/", stack.query_url))
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let text = r.text().await?;
    assert!(
        text.contains("npm run build") && text.contains("nothing-here"),
        "{text}"
    );
    let api = stack
        .http
        .get(format!("{}/v1/metrics/overview", stack.query_url))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    assert_eq!(api.status(), 200);
    std::fs::remove_dir_all(&build)?;
    Ok(())
}
