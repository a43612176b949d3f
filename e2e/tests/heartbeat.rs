//! `POST /v1/heartbeat` through the whole pipeline: real Apache Kafka, PostgreSQL
//! and every component as its own process.

use std::time::Duration;

use agentops_e2e::{Stack, StackOptions};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_reach_the_agents_projection_and_answer_directives() -> anyhow::Result<()> {
    let stack = Stack::start("heartbeat", StackOptions::default()).await?;
    let post = |body: Value, key: String| {
        stack
            .http
            .post(format!("{}/v1/heartbeat", stack.gateway_url))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let r = post(
        json!({"agent_id": "hb-1", "status": "degraded", "metadata": {"version": "1.2.0"}}),
        stack.ingest_key.clone(),
    )
    .await?;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await?;
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["directives"], json!([]));
    let event_id = body["event_id"].as_str().unwrap().to_owned();

    // It flows like any event: the agent's last heartbeat and its status.
    let agent = stack
        .eventually(Duration::from_secs(30), "heartbeat projected", || async {
            let agents = stack.get("/v1/agents").await?;
            Ok(agents["agents"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["agent_id"] == "hb-1").cloned()))
        })
        .await?;
    assert_eq!(agent["heartbeat_status"], "degraded", "{agent}");
    assert!(agent["last_heartbeat"].is_string(), "{agent}");
    let attrs: Value =
        sqlx::query_scalar("SELECT attributes FROM events WHERE event_id = $1::uuid")
            .bind(&event_id)
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(attrs["version"], "1.2.0");

    // Bad input names the field; a read key may not send heartbeats.
    let r = post(json!({"status": "ok"}), stack.ingest_key.clone()).await?;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await?;
    assert_eq!(err["rejected"][0]["field"], "agent_id", "{err}");
    let r = post(json!(["hb-1"]), stack.ingest_key.clone()).await?;
    assert_eq!(r.status(), 400);
    let r = post(json!({"agent_id": "hb-1"}), stack.read_key.clone()).await?;
    assert_eq!(r.status(), 403);

    // A paused agent is told so in the answer to its heartbeat.
    sqlx::query(
        "INSERT INTO agent_controls (org_id, agent_id, action, reason, set_by)
         VALUES ($1, 'hb-1', 'pause', 'maintenance', 'e2e')",
    )
    .bind(&stack.org_id)
    .execute(&stack.pool)
    .await?;
    let directives = stack
        .eventually(Duration::from_secs(10), "pause directive", || async {
            let r = post(json!({"agent_id": "hb-1"}), stack.ingest_key.clone()).await?;
            let body: Value = r.json().await?;
            Ok(body["directives"]
                .as_array()
                .filter(|d| !d.is_empty())
                .cloned())
        })
        .await?;
    assert_eq!(
        directives,
        vec![json!({"agent_id": "hb-1", "action": "pause", "reason": "maintenance"})]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_batches_are_accepted_and_bombs_get_413() -> anyhow::Result<()> {
    use std::io::Write;
    let stack = Stack::start("encoding", StackOptions::default()).await?;
    let (events, _, _) = agentops_e2e::events::fleet(20, 4, 0, "enc");
    let plain = serde_json::to_vec(&json!({ "events": events }))?;
    let gzip = |data: &[u8]| -> anyhow::Result<Vec<u8>> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        w.write_all(data)?;
        Ok(w.finish()?)
    };
    let send = |encoding: &'static str, body: Vec<u8>| {
        stack
            .http
            .post(format!("{}/v1/events", stack.gateway_url))
            .bearer_auth(&stack.ingest_key)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
    };
    let (half_a, half_b) = events.split_at(50);
    let r = send(
        "gzip",
        gzip(&serde_json::to_vec(&json!({ "events": half_a }))?)?,
    )
    .await?;
    assert_eq!(r.status(), 202, "{}", r.text().await?);
    let zstd_body =
        zstd::stream::encode_all(&serde_json::to_vec(&json!({ "events": half_b }))?[..], 3)?;
    let r = send("zstd", zstd_body).await?;
    assert_eq!(r.status(), 202, "{}", r.text().await?);
    stack
        .eventually(Duration::from_secs(30), "100 events projected", || async {
            Ok((stack.event_rows().await? == 100).then_some(()))
        })
        .await?;
    assert!(plain.len() > 1000);

    // 64 MiB of spaces, about 64 KiB compressed: refused at the 1 MiB cap.
    let bomb = gzip(&vec![b' '; 64 << 20])?;
    assert!(bomb.len() < 1 << 20);
    let r = send("gzip", bomb).await?;
    assert_eq!(r.status(), 413);
    let err: Value = r.json().await?;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decompressed"),
        "{err}"
    );
    let r = send("br", plain.clone()).await?;
    assert_eq!(r.status(), 415);
    let r = send("gzip", plain).await?;
    assert_eq!(r.status(), 400);
    // The gateway is still serving.
    let r = send(
        "identity",
        serde_json::to_vec(&json!({"events": &events[..5]}))?,
    )
    .await?;
    assert_eq!(r.status(), 202);
    Ok(())
}
