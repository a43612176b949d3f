//! An agent named with chat mention and link syntax (issue 12, item 0): its
//! alerts arrive at Slack and Discord receivers escaped, through the whole
//! pipeline (gateway → policy alert → notifier), so an org cannot page a
//! whole workspace or hide a link behind an agent's name.

use std::time::Duration;

use agentops_e2e::webhook::Receiver;
use agentops_e2e::{events, Stack, StackOptions};
use anyhow::{ensure, Result};
use serde_json::{json, Value};

const HOSTILE: &str =
    "<!channel> @everyone <@U123> [click](https://evil.example) <https://evil.example|x>";

/// Every text a chat client renders from the body.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        Value::Object(m) => m
            .iter()
            // The alert's own fields are data, not rendered text.
            .filter(|(k, _)| k.as_str() != "alert" && k.as_str() != "allowed_mentions")
            .for_each(|(_, x)| texts(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_named_with_mentions_and_links_arrives_escaped_in_slack_and_discord() -> Result<()>
{
    let stack = Stack::start(
        "notify_escape",
        StackOptions {
            env: vec![("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "200".into())],
            ..Default::default()
        },
    )
    .await?;
    let (slack, discord) = (Receiver::start(0).await?, Receiver::start(0).await?);
    for (name, kind, url) in [("s", "slack", &slack.url), ("d", "discord", &discord.url)] {
        let r = stack
            .http
            .post(format!("{}/v1/admin/channels", stack.query_url))
            .bearer_auth(&stack.admin_key)
            .json(&json!({"name": name, "kind": kind, "url": url}))
            .send()
            .await?;
        ensure!(r.status() == 201, "{kind} channel: {}", r.status());
    }
    let r = stack
        .http
        .post(format!("{}/v1/admin/policies", stack.query_url))
        .bearer_auth(&stack.admin_key)
        .json(
            &json!({"name": "no-o3", "kind": "model_denylist", "names": ["o3"], "action": "alert"}),
        )
        .send()
        .await?;
    ensure!(r.status() == 201, "policy: {}", r.status());
    tokio::time::sleep(Duration::from_millis(1500)).await; // the policy is loaded
    let event = json!({"event_id": events::id(), "type": "llm_call", "agent_id": HOSTILE,
        "run_id": "r1", "timestamp": chrono::Utc::now().to_rfc3339(), "provider": "openai",
        "model": "o3", "input_tokens": 10});
    let (status, body) = stack.post_events(&json!({ "events": [event] })).await?;
    ensure!(status == 202, "{status} {body}");
    for (kind, receiver) in [("slack", &slack), ("discord", &discord)] {
        let got = stack
            .eventually(Duration::from_secs(60), "the alert delivered", || async {
                Ok(receiver.received().into_iter().next())
            })
            .await?;
        let mut shown = Vec::new();
        texts(&got.body, &mut shown);
        let all = shown.join("\n");
        // What each renders as a mention or a link: Slack's <...> syntax
        // (its mrkdwn has no [text](url) links), Discord's markdown links.
        let mut live = vec!["<!channel>", "<@U123>"];
        live.push(if kind == "slack" {
            "<https://evil.example|"
        } else {
            "](https://evil.example)"
        });
        for raw in live {
            ensure!(!all.contains(raw), "{kind}: `{raw}` arrived as is: {all}");
        }
        ensure!(
            !all.contains(" @everyone"),
            "{kind}: a live @everyone: {all}"
        );
        ensure!(
            all.contains("everyone"),
            "{kind}: the name is still shown: {all}"
        );
        if kind == "discord" {
            ensure!(
                got.body["allowed_mentions"] == json!({"parse": []}),
                "{}",
                got.body
            );
        }
    }
    Ok(())
}
