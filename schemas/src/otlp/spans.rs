//! Walking a request's spans: each span in order with its resource's
//! `service.name`, its agent (its own or its nearest ancestor's), its
//! events validated as client events.

use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::Span;

use super::attrs::{Attrs, Place};
use super::event::span_events;
use super::semconv::{classify, AGENT};
use super::{ExportTraceServiceRequest, Mapped};
use crate::batch::Rejected;
use crate::validate::{event_from_str, ValidationLimits};

/// Map every span of a request to events, validated for `org_id` at `now_us`.
pub fn to_events(
    request: &ExportTraceServiceRequest,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Mapped {
    // Each resource's `service.name` and attributes, read once for all its spans.
    let resources: Vec<(Option<String>, Attrs<'_>)> = request
        .resource_spans
        .iter()
        .map(|rs| {
            let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            let r = Attrs::new(resource);
            (r.text("service.name"), r)
        })
        .collect();
    let mut spans: Vec<(&Span, Option<&str>)> = Vec::new();
    let mut span_resource: Vec<usize> = Vec::new();
    for (i, (rs, (service, _))) in request.resource_spans.iter().zip(&resources).enumerate() {
        for ss in &rs.scope_spans {
            spans.extend(ss.spans.iter().map(|s| (s, service.as_deref())));
            span_resource.extend(std::iter::repeat_n(i, ss.spans.len()));
        }
    }
    let attrs: Vec<Attrs<'_>> = spans
        .iter()
        .map(|(s, _)| Attrs::new(&s.attributes))
        .collect();
    let agents = inherited(&spans, &attrs, AGENT);
    let sessions = inherited(&spans, &attrs, super::attrs::SESSION_KEYS);
    let mut out = Mapped {
        spans: spans.len(),
        ..Mapped::default()
    };
    for (index, &(span, service)) in spans.iter().enumerate() {
        let a = &attrs[index];
        let Some(op) = classify(a) else {
            out.ignored_spans += 1;
            continue;
        };
        // The agent: the span's own or its nearest ancestor's in this
        // request, else the resource's service.name.
        let agent = agents[index]
            .clone()
            .or_else(|| service.map(str::to_owned))
            .unwrap_or_else(|| "unknown_service".to_owned());
        let place = Place::of(a, &resources[span_resource[index]].1);
        let session = sessions[index].as_deref();
        let events = match span_events(
            span, service, a, &place, session, op, &agent, org_id, limits,
        ) {
            Ok(events) => events,
            Err((field, error)) => {
                out.rejected.push(Rejected {
                    index,
                    field: field.to_owned(),
                    error,
                });
                continue;
            }
        };
        for event in events {
            match event_from_str(&event, org_id, now_us, limits) {
                Ok(e) => out.accepted.push(e),
                Err(e) => out.rejected.push(Rejected {
                    index,
                    field: e.field,
                    error: e.error,
                }),
            }
        }
    }
    out
}

/// Each span's attribute of `keys` (the first present), else its nearest
/// ancestor's in this request: the agent (`gen_ai.agent.id` / `.name`) and
/// the session (`gen_ai.conversation.id`, which Copilot Chat, for one,
/// puts on its `invoke_agent` span only). Every span is resolved once
/// (memoized along each walk up), so a long parent chain costs linear
/// time; a parent cycle (malformed input) resolves to none.
fn inherited(
    spans: &[(&Span, Option<&str>)],
    attrs: &[Attrs<'_>],
    keys: &[&str],
) -> Vec<Option<String>> {
    let by_id: HashMap<(&[u8], &[u8]), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, (s, _))| ((&s.trace_id[..], &s.span_id[..]), i))
        .collect();
    let parent = |i: usize| {
        let s = spans[i].0;
        if s.parent_span_id.is_empty() {
            return None;
        }
        by_id
            .get(&(&s.trace_id[..], &s.parent_span_id[..]))
            .copied()
    };
    let mut agent: Vec<Option<Option<String>>> = vec![None; spans.len()];
    let mut on_walk = vec![false; spans.len()];
    for start in 0..spans.len() {
        let mut walk = Vec::new();
        let mut cur = start;
        let found = loop {
            if let Some(done) = &agent[cur] {
                break done.clone();
            }
            if on_walk[cur] {
                break None;
            }
            on_walk[cur] = true;
            walk.push(cur);
            if let Some(own) = attrs[cur].text_of(keys) {
                break Some(own);
            }
            match parent(cur) {
                Some(p) => cur = p,
                None => break None,
            }
        };
        for i in walk {
            agent[i] = Some(found.clone());
        }
    }
    agent.into_iter().map(Option::flatten).collect()
}
