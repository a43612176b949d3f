//! Refusals with their HTTP status (no `Origin`) or close code (browsers).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_with_a_status_or_a_close_code() -> Result<()> {
    let opts = StackOptions {
        env: vec![("AGENTOPS_LIVE__MAX_CLIENTS_PER_ORG".into(), "2".into())],
        skip: vec![Component::Processors, Component::Projections],
        ..Default::default()
    };
    let stack = Stack::start("live_refusals", opts).await?;
    let origin = stack.query_url.clone();
    let browser = [("origin", origin.as_str())];
    let bearer = |k: &str| format!("Bearer {k}");
    let revoked = agentops_tenancy::create_key_named(
        &stack.pool,
        &stack.org_id,
        &[agentops_runtime::keys::Scope::Read],
        Some("revoked"),
        "e2e",
    )
    .await?;
    agentops_tenancy::revoke_key(&stack.pool, &stack.org_id, revoked.key_id, "e2e").await?;

    // Without Origin (not a browser): the REST answer on the handshake.
    let (status, body) = refused_status(open(&stack, "", &[]).await)?;
    ensure!(
        status == 401 && body["error"]["code"] == "missing_api_key",
        "{status} {body}"
    );
    let (status, _) =
        refused_status(open(&stack, "", &[("authorization", &bearer(&revoked.secret))]).await)?;
    ensure!(status == 401, "revoked: {status}");
    let (status, body) =
        refused_status(open(&stack, "", &[("authorization", &bearer(&stack.ingest_key))]).await)?;
    ensure!(
        status == 403 && body["error"]["code"] == "forbidden",
        "ingest: {status} {body}"
    );
    let read = bearer(&stack.read_key);
    let (status, body) =
        refused_status(open(&stack, "?types=run.exploded", &[("authorization", &read)]).await)?;
    ensure!(
        status == 400 && body["error"]["field"] == "types",
        "{status} {body}"
    );

    // With Origin (a browser, which cannot read a refused handshake): the
    // handshake, then the close code.
    for (headers, code, reason) in [
        (vec![], 4401, "missing API key"),
        (
            vec![("authorization", bearer(&revoked.secret))],
            4401,
            "unknown or revoked",
        ),
        (
            vec![("authorization", bearer(&stack.ingest_key))],
            4403,
            "read",
        ),
        (vec![("authorization", read.clone())], 4400, "types"),
    ] {
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.extend(browser);
        let query = if code == 4400 {
            "?types=run.exploded"
        } else {
            ""
        };
        let mut ws = open(&stack, query, &h).await?;
        let (got, why) = close_of(&mut ws).await?;
        ensure!(
            got == code && why.contains(reason),
            "{code}: got {got} {why}"
        );
    }

    // The key as a subprotocol: only `agentops.v1` is echoed.
    let mut req = ws_url(&stack, "").into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("agentops.v1, agentops.key.{}", stack.read_key))?,
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await?;
    ensure!(
        resp.headers()["sec-websocket-protocol"] == "agentops.v1",
        "{resp:?}"
    );
    // A bad subscribe message: 4400 naming the field.
    ws.send(Message::text(r#"{"subscribe":{"types":["nope"]}}"#))
        .await?;
    let (code, why) = close_of(&mut ws).await?;
    ensure!(code == 4400 && why.starts_with("types:"), "{code} {why}");

    // A member's session cookie: same-origin upgrade accepted, cross-origin refused.
    let cookie = session_cookie(&stack).await?;
    let evil = [
        ("cookie", cookie.as_str()),
        ("origin", "http://evil.example"),
    ];
    let (status, body) = refused_status(open(&stack, "", &evil).await)?;
    ensure!(status == 403, "cross-origin: {status} {body}");
    let own = [("cookie", cookie.as_str()), ("origin", origin.as_str())];
    let mut member = open(&stack, "", &own).await?;
    ensure!(next_frame(&mut member, Duration::from_millis(300))
        .await?
        .is_none());

    // Per-org cap 2: the third socket of the org is closed with 1013.
    let _second = open_key(&stack, "", &stack.read_key).await?;
    let mut third = open_key(&stack, "", &stack.read_key).await?;
    let (code, why) = close_of(&mut third).await?;
    ensure!(code == 1013 && why.contains("too many"), "{code} {why}");

    // A plain GET (no upgrade) with a good key: 426.
    let r = stack
        .http
        .get(format!("{}/v1/live", stack.query_url))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(r.status() == 426, "{}", r.status());
    let refusals = stack
        .metric(Component::QueryApi, "agentops_live_refusals_total", "")
        .await?;
    ensure!(refusals >= 10.0, "{refusals}");
    Ok(())
}

/// A viewer's session cookie (created as sign-in does).
async fn session_cookie(stack: &Stack) -> Result<String> {
    use agentops_tenancy::people::{self, Role};
    let mut tx = stack.pool.begin().await?;
    let u = people::insert_user(&mut tx, "viewer@example.com", "Viewer", "x")
        .await?
        .context("user")?;
    people::add_member(&mut tx, &stack.org_id, u.id, Role::Viewer, "e2e").await?;
    let s = agentops_tenancy::sessions::create_session(
        &mut tx,
        u.id,
        &stack.org_id,
        chrono::Duration::hours(1),
    )
    .await?;
    tx.commit().await?;
    Ok(format!("agentops_session={}", s.token))
}
