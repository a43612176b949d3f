//! The sender against a real local HTTP server: 202, 503 with Retry-After
//! then 202, 400 with rejected indices, 413, network errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentops_collector::event::OutEvent;
use agentops_collector::sender::{Outcome, Sender};
use agentops_collector::store::Store;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Server {
    script: VecDeque<(u16, Option<&'static str>, String)>,
    /// (authorization, content-encoding, decompressed body)
    got: Vec<(String, String, serde_json::Value)>,
}

type Shared = Arc<Mutex<Server>>;

async fn handler(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut st = s.lock().unwrap();
    st.got.push((
        h("authorization"),
        h("content-encoding"),
        serde_json::from_str(&text).unwrap(),
    ));
    let (status, retry_after, body) = st.script.pop_front().unwrap_or((202, None, String::new()));
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

async fn start(script: Vec<(u16, Option<&'static str>, String)>) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Server {
        script: script.into(),
        got: Vec::new(),
    }));
    let app = axum::Router::new()
        .route("/v1/events", axum::routing::post(handler))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/v1/events"), shared)
}

fn event(i: usize) -> OutEvent {
    let id = agentops_collector::event::event_id("m", &["test", &i.to_string()]);
    let mut e = OutEvent::new(id, "llm_call", "claude-code", 1_772_409_600_000 + i as i64);
    e.run_id = Some("s".into());
    e.input_tokens = Some(i as i64);
    e
}

fn store_with(dir: &std::path::Path, n: usize) -> Store {
    let mut store = Store::open(&dir.join("c.db")).unwrap();
    let events: Vec<OutEvent> = (0..n).map(event).collect();
    store
        .commit_chunk(None, &mut Default::default(), &events, &[], 1_000_000)
        .unwrap();
    store
}

fn counter(store: &Store, name: &str) -> u64 {
    store
        .counters()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == name)
        .map_or(0, |(_, v)| v)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn accepted_batches_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1200);
    let (url, server) = start(vec![]).await;
    let mut s = Sender::new(store, url, "aok_test".into(), 500, Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        let n = match s.send_once().await.unwrap() {
            Outcome::Done {
                accepted,
                rejected: 0,
            } => accepted,
            other => panic!("{other:?}"),
        };
        assert!(n == 500 || n == 200);
    }
    assert_eq!(s.send_once().await.unwrap(), Outcome::Empty);
    assert_eq!(s.store.outbox_depth().unwrap(), 0);
    assert_eq!(counter(&s.store, "sent_events"), 1200);
    let got = &server.lock().unwrap().got;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, "Bearer aok_test");
    assert_eq!(got[0].1, "gzip");
    let all: Vec<String> = got.iter().flat_map(|g| ids(&g.2)).collect();
    let want: Vec<String> = (0..1200).map(|i| event(i).event_id).collect();
    assert_eq!(all, want, "every event once, in order");
    assert!(s
        .store
        .meta("last_send_result")
        .unwrap()
        .unwrap()
        .starts_with("202"));
}

#[tokio::test]
async fn unavailable_then_accepted_keeps_the_rows_until_202() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 10);
    let body = r#"{"error":{"code":"unavailable","message":"retry"}}"#.to_owned();
    let (url, server) = start(vec![(503, Some("2"), body.clone()), (429, Some("1"), body)]).await;
    let mut s = Sender::new(store, url, "k".into(), 500, Duration::from_secs(5)).unwrap();
    match s.send_once().await.unwrap() {
        Outcome::Retry { after, reason } => {
            assert!(
                after >= Duration::from_secs(2) && after <= Duration::from_millis(2250),
                "{after:?}"
            );
            assert!(reason.starts_with("503"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.store.outbox_depth().unwrap(), 10);
    match s.send_once().await.unwrap() {
        Outcome::Retry { after, .. } => {
            assert!(after >= Duration::from_secs(1) && after <= Duration::from_millis(1250))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.send_once().await.unwrap(),
        Outcome::Done {
            accepted: 10,
            rejected: 0
        }
    );
    assert_eq!(s.store.outbox_depth().unwrap(), 0);
    let got = &server.lock().unwrap().got;
    assert_eq!(got.len(), 3);
    // The same batch each time (the pipeline drops the copies by event_id).
    assert_eq!(ids(&got[0].2), ids(&got[2].2));
    assert_eq!(counter(&s.store, "send_retries"), 2);
}

#[tokio::test]
async fn rejected_indices_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 4);
    let partial = r#"{"accepted":2,"rejected":[{"index":1,"field":"timestamp","error":"older than the late window"},{"index":3,"field":"model","error":"control character"}],"directives":[]}"#;
    let (url, _server) = start(vec![(202, None, partial.to_owned())]).await;
    let mut s = Sender::new(store, url, "k".into(), 500, Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.send_once().await.unwrap(),
        Outcome::Done {
            accepted: 2,
            rejected: 2
        }
    );
    assert_eq!(s.store.outbox_depth().unwrap(), 0);
    assert_eq!(counter(&s.store, "rejected_events"), 2);
    assert_eq!(counter(&s.store, "sent_events"), 2);

    // 400 all_events_rejected: all dropped, counted.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let all = r#"{"error":{"code":"all_events_rejected","message":"no valid event"},"accepted":0,"rejected":[{"index":0,"field":"timestamp","error":"old"},{"index":1,"field":"timestamp","error":"old"}]}"#;
    let (url, _server) = start(vec![(400, None, all.to_owned())]).await;
    let mut s = Sender::new(store, url, "k".into(), 500, Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.send_once().await.unwrap(),
        Outcome::Done {
            accepted: 0,
            rejected: 2
        }
    );
    assert_eq!(s.store.outbox_depth().unwrap(), 0);
    assert_eq!(counter(&s.store, "rejected_events"), 2);
}

#[tokio::test]
async fn too_large_halves_the_batch_and_bad_keys_keep_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 8);
    let (url, server) = start(vec![
        (413, None, String::new()),
        (
            401,
            None,
            r#"{"error":{"code":"invalid_api_key"}}"#.to_owned(),
        ),
    ])
    .await;
    let mut s = Sender::new(store, url, "k".into(), 8, Duration::from_secs(5)).unwrap();
    assert!(matches!(
        s.send_once().await.unwrap(),
        Outcome::Retry { .. }
    ));
    assert_eq!(s.batch_size, 4);
    match s.send_once().await.unwrap() {
        Outcome::Retry { after, .. } => assert!(after >= Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.store.outbox_depth().unwrap(), 8);
    assert_eq!(
        s.send_once().await.unwrap(),
        Outcome::Done {
            accepted: 4,
            rejected: 0
        }
    );
    assert_eq!(
        server.lock().unwrap().got[2].2["events"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn network_error_backs_off_and_drain_gives_up_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3);
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/events", l.local_addr().unwrap());
    drop(l);
    let mut s = Sender::new(store, url, "k".into(), 500, Duration::from_secs(2)).unwrap();
    let mut last = Duration::ZERO;
    for _ in 0..4 {
        match s.send_once().await.unwrap() {
            Outcome::Retry { after, reason } => {
                assert!(reason.starts_with("network"));
                assert!(after <= Duration::from_secs(60));
                last = after;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        last >= Duration::from_millis(2000),
        "backoff grows: {last:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_millis(10);
    assert!(!s.drain(Some(deadline)).await.unwrap());
    assert_eq!(s.store.outbox_depth().unwrap(), 3);
}

#[tokio::test]
async fn a_drained_backlog_gives_its_pages_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("c.db")).unwrap();
    let events: Vec<OutEvent> = (0..12_000)
        .map(|i| {
            let mut e = event(i);
            e.attributes.insert("pad".into(), "p".repeat(1000));
            e
        })
        .collect();
    store
        .commit_chunk(None, &mut Default::default(), &events, &[], 1_000_000)
        .unwrap();
    let db = dir.path().join("c.db");
    let size = |p: &std::path::Path| {
        std::fs::metadata(p).unwrap().len()
            + std::fs::metadata(p.with_extension("db-wal")).map_or(0, |m| m.len())
    };
    let (url, _server) = start(vec![]).await;
    let mut s = Sender::new(store, url, "k".into(), 1000, Duration::from_secs(5)).unwrap();
    let full = size(&db);
    assert!(full > 12_000_000, "{full}");
    assert!(s.drain(None).await.unwrap());
    let after = size(&db);
    assert!(after < full / 4, "{full} -> {after}");
}
