//! HTTP handlers of the gateway.

use std::net::SocketAddr;
use std::sync::Arc;

use agentops_schemas::batch::{self, Batch, Rejected};
use agentops_schemas::validate::event_from_str;
use agentops_schemas::AgentEvent;
use axum::body::Body;
use axum::extract::Query;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::error::ApiError;
use crate::ingest::{ingest_request, limits, produce_all, text, Accepted, AppState};
use crate::telemetry;

type Handler = axum::routing::MethodRouter<Arc<AppState>>;

/// Every route of the gateway: each needs a key with the `ingest` scope (or
/// `admin`). The router is built from this list, and the authorization
/// matrix test (`e2e/tests/authz_matrix.rs`) walks it.
fn handlers() -> [(Method, &'static str, Handler); 6] {
    [
        (Method::POST, "/v1/events", post(post_events)),
        (Method::POST, "/v1/heartbeat", post(post_heartbeat)),
        (Method::POST, "/v1/traces", post(crate::otlp::post_traces)),
        (Method::POST, "/v1/logs", post(crate::otlp::post_logs)),
        (Method::POST, "/v1/metrics", post(crate::otlp::post_metrics)),
        (Method::GET, "/v1/directives", get(get_directives)),
    ]
}

/// The methods and paths of [`handlers`] (all `ingest`).
pub fn routes() -> Vec<(Method, &'static str)> {
    handlers()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    handlers()
        .into_iter()
        .fold(Router::new(), |r, (_, path, h)| r.route(path, h))
        // Every ingest route above is behind the in-flight bound.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// At most `max_in_flight` requests are processed at once; the next one
/// gets 429 at once (held for the whole request, body reading included).
async fn admit(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = state.config.max_in_flight;
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return ApiError::Overloaded(max).into_response();
    };
    telemetry::in_flight(max - state.in_flight.available_permits());
    let response = next.run(req).await;
    drop(permit);
    telemetry::in_flight(max - state.in_flight.available_permits());
    response
}

/// Append one event or a batch; valid events are acknowledged by the broker
/// before the 202, invalid ones are listed in `rejected`.
#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    request_body(content = crate::openapi::EventsBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted (some events may be rejected)", body = crate::openapi::EventsAccepted),
        (status = 400, description = "No event is valid (`all_events_rejected`, with `accepted: 0` and `rejected`), or the body is not JSON of the right shape", body = agentops_runtime::openapi::ErrorBody),
    ))]
pub(crate) async fn post_events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = ingest_request(&state, &headers, client, body).await?;
    let limits = limits(&state.config);
    let (max_events, org_id) = (state.config.max_batch_events, key.org_id.clone());
    let (Batch { accepted, rejected }, records) = body
        .parse_and_encode(&state.codec, move |bytes| {
            let now_us = chrono::Utc::now().timestamp_micros();
            Ok(batch::decode(
                text(bytes)?,
                max_events,
                &org_id,
                now_us,
                &limits,
            )?)
        })
        .await?;
    telemetry::events_rejected(&key.org_id, rejected.len());
    if accepted.is_empty() {
        return Err(ApiError::AllRejected(rejected));
    }
    produce_all(&state, &key, &records).await?;
    telemetry::events_accepted(&key.org_id, accepted.len());
    let directives = state
        .directives
        .for_agents(&key.org_id, accepted.iter().map(|e| e.agent_id.as_str()))
        .await;
    let body = json!({"accepted": accepted.len(), "rejected": rejected, "directives": directives});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /v1/directives?agent_id=&project_id=&machine_id=&workspace_id=&session_id=`:
/// the pauses and kills on any of the named scopes (at least one), e.g.
/// `{"directives": [{"scope": "project", "id": "github.com/acme/shop",
/// "action": "pause", "reason": "budget 'shop' reached 100%"}]}`; an empty
/// list means go ahead. Served from the per-org cache of the controls
/// (`directive_cache_ttl_ms`), so it answers in well under a millisecond
/// and keeps answering the last known set while the database is away.
#[utoipa::path(get, path = "/v1/directives", tag = "ingest",
    params(crate::openapi::DirectivesQuery),
    responses((status = 200, description = "The controls on the named scopes",
        body = crate::openapi::DirectivesAnswer)))]
pub(crate) async fn get_directives(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let key = crate::ingest::authenticate(
        &state,
        &headers,
        agentops_runtime::keys::Scope::Ingest,
        client.ip(),
    )
    .await?;
    let max = limits(&state.config).max_string_len;
    let mut named: Vec<(&str, &str)> = Vec::new();
    for (scope, param) in crate::directives::SCOPES {
        if let Some(v) = params.get(param).filter(|v| !v.is_empty()) {
            if v.chars().count() > max || v.chars().any(char::is_control) {
                return Err(ApiError::BadRequest {
                    field: param.into(),
                    error: format!("at most {max} characters, no control characters"),
                });
            }
            named.push((scope, v.as_str()));
        }
    }
    if named.is_empty() {
        return Err(ApiError::BadRequest {
            field: "agent_id".into(),
            error: "name at least one of agent_id, project_id, machine_id, workspace_id, \
                    session_id"
                .into(),
        });
    }
    let directives = state.directives.for_scopes(&key.org_id, &named).await;
    Ok(Json(json!({ "directives": directives })).into_response())
}

impl Accepted for Batch {
    fn accepted(&self) -> &[AgentEvent] {
        &self.accepted
    }
}

/// `POST /v1/heartbeat`: `{"agent_id": "a1", "status": "ok", "metadata": {...}}`
/// (`status`, `metadata`, `timestamp` and `event_id` optional; the time
/// defaults to now and the id to a new UUID). It becomes a `heartbeat` event,
/// validated and acknowledged like any other, so liveness is computed
/// downstream (agents' `last_heartbeat`, `no_heartbeat` rules).
#[utoipa::path(post, path = "/v1/heartbeat", tag = "ingest",
    request_body(content = crate::openapi::HeartbeatBody, content_type = "application/json"),
    responses((status = 202, description = "Accepted", body = crate::openapi::HeartbeatAccepted)))]
pub(crate) async fn post_heartbeat(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = ingest_request(&state, &headers, client, body).await?;
    let (limits, org_id) = (limits(&state.config), key.org_id.clone());
    let (e, records) = body
        .parse_and_encode(&state.codec, move |bytes| {
            let value: serde_json::Value =
                serde_json::from_str(text(bytes)?).map_err(|e| ApiError::BadJson(e.to_string()))?;
            let event = heartbeat_event(value, chrono::Utc::now())?;
            let now_us = chrono::Utc::now().timestamp_micros();
            event_from_str(&event.to_string(), &org_id, now_us, &limits).map_err(|e| {
                ApiError::AllRejected(vec![Rejected {
                    index: 0,
                    field: e.field,
                    error: e.error,
                }])
            })
        })
        .await?;
    produce_all(&state, &key, &records).await?;
    telemetry::events_accepted(&key.org_id, 1);
    let directives = state
        .directives
        .for_agents(&key.org_id, [e.agent_id.as_str()])
        .await;
    let body = json!({"accepted": 1, "event_id": e.event_id, "directives": directives});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

impl Accepted for AgentEvent {
    fn accepted(&self) -> &[AgentEvent] {
        std::slice::from_ref(self)
    }
}

/// The event a heartbeat body stands for (validated afterwards like any event).
fn heartbeat_event(
    value: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<serde_json::Value, ApiError> {
    let serde_json::Value::Object(mut m) = value else {
        return Err(ApiError::BadShape(
            "expected a JSON object like {\"agent_id\": \"a1\", \"status\": \"ok\"}".into(),
        ));
    };
    match m.get("type").and_then(serde_json::Value::as_str) {
        None | Some("heartbeat") => {}
        Some(_) => {
            return Err(ApiError::BadShape(
                "field `type`: a heartbeat is always of type heartbeat".into(),
            ))
        }
    }
    if let Some(meta) = m.remove("metadata") {
        if m.contains_key("attributes") {
            return Err(ApiError::BadShape(
                "send `metadata` or `attributes`, not both".into(),
            ));
        }
        m.insert("attributes".into(), meta);
    }
    m.insert("type".into(), json!("heartbeat"));
    m.entry("event_id")
        .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    m.entry("timestamp")
        .or_insert_with(|| json!(now.to_rfc3339()));
    Ok(serde_json::Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_become_events() {
        let now = chrono::Utc::now();
        let e = heartbeat_event(json!({"agent_id": "a1", "metadata": {"v": "1"}}), now).unwrap();
        assert_eq!(e["type"], "heartbeat");
        assert_eq!(e["attributes"]["v"], "1");
        assert_eq!(e["timestamp"], json!(now.to_rfc3339()));
        assert!(uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).is_ok());
        let kept = heartbeat_event(
            json!({"agent_id": "a", "event_id": "x", "timestamp": 5}),
            now,
        )
        .unwrap();
        assert_eq!(
            (kept["event_id"].clone(), kept["timestamp"].clone()),
            (json!("x"), json!(5))
        );
        assert!(heartbeat_event(json!([1]), now).is_err());
        assert!(heartbeat_event(json!({"agent_id": "a", "type": "llm_call"}), now).is_err());
        assert!(heartbeat_event(json!({"metadata": {}, "attributes": {}}), now).is_err());
    }
}
