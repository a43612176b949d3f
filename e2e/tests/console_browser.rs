//! The operator console in headless Chromium (Playwright) against a real
//! stack with a known event mix and budgets of each color: a viewer signs in
//! (and out, which revokes the session), the KPI cards and
//! gauge colors equal the API's answers, the window picker redraws every
//! panel and lands in the URL. Runs `deploy/local/browser/console.test.mjs`
//! on the real build (`query-api/console/dist`, made by the test command);
//! screenshots in `target/e2e-logs/console-*.png`.

use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::{run_browser_test, Stack, StackOptions};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_api_figures_in_chromium() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = root.join("query-api/console/dist");
    anyhow::ensure!(
        build.join("index.html").exists(),
        "no console build in {}: run `cd query-api/console && npm ci && npm run build` (the test command does)",
        build.display()
    );
    let stack = Stack::start(
        "console_browser",
        StackOptions {
            env: vec![("AGENTOPS_CONSOLE_DIR".into(), build.display().to_string())],
            ..Default::default()
        },
    )
    .await?;
    let (evs, _, _) = events::fleet(60, 6, 4, "cb");
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 300).then_some(()))
        })
        .await?;
    // One budget per color: far below (green), just past 80% (amber), over (red).
    let spent: f64 = sqlx::query_scalar("SELECT COALESCE(sum(cost_usd), 0)::float8 FROM events")
        .fetch_one(&stack.pool)
        .await?;
    anyhow::ensure!(spent > 0.0, "the mix has a cost");
    for (name, limit) in [
        ("green", spent * 100.0),
        ("amber", spent / 0.85),
        ("red", spent / 2.0),
    ] {
        let r = stack
            .http
            .post(format!("{}/v1/admin/budgets", stack.query_url))
            .bearer_auth(&stack.admin_key)
            .json(&json!({"name": name, "period": "month", "limit_usd": limit}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "{}", r.text().await?);
    }
    // A viewer who signs in (created as the CLI does).
    let (email, password) = ("viewer@console.test", "a long enough password 1");
    let hash = agentops_tenancy::people::hash_password(password)?;
    let mut tx = stack.pool.begin().await?;
    let user = agentops_tenancy::people::insert_user(&mut tx, email, "Vera Viewer", &hash)
        .await?
        .ok_or_else(|| anyhow::anyhow!("email taken"))?;
    agentops_tenancy::people::add_member(
        &mut tx,
        &stack.org_id,
        user.id,
        agentops_tenancy::people::Role::Viewer,
        "test",
    )
    .await?;
    tx.commit().await?;
    let shots = root.join("target/e2e-logs");
    std::fs::create_dir_all(&shots)?;
    run_browser_test(
        "console.test.mjs",
        &[
            ("AGENTOPS_QUERY_URL", stack.query_url.as_ref()),
            ("AGENTOPS_READ_KEY", stack.read_key.as_ref()),
            ("AGENTOPS_USER_EMAIL", email.as_ref()),
            ("AGENTOPS_USER_PASSWORD", password.as_ref()),
            ("AGENTOPS_SCREENSHOT_DIR", shots.as_os_str()),
        ],
    )
    .await
}
