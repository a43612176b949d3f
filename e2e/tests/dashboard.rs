//! The dashboard in headless Chromium shows the KPI values the API returns.
//! Runs `deploy/local/browser/dashboard.test.mjs` (node:test + playwright-core).

use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::{run_browser_test, Stack, StackOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_api_kpis_in_chromium() -> anyhow::Result<()> {
    let stack = Stack::start("dashboard", StackOptions::default()).await?;
    let (events, _, _) = events::fleet(60, 6, 4, "db");
    stack.send_all(&events, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 300).then_some(()))
        })
        .await?;
    let screenshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-logs/dashboard.png");
    run_browser_test(
        "dashboard.test.mjs",
        &[
            ("AGENTOPS_QUERY_URL", stack.query_url.as_ref()),
            ("AGENTOPS_READ_KEY", stack.read_key.as_ref()),
            ("AGENTOPS_SCREENSHOT", screenshot.as_os_str()),
        ],
    )
    .await
}
