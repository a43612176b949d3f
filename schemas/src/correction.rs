//! Cost corrections on the enriched topic.
//!
//! `agentops-processors recompute` re-prices events after a price change and
//! appends one correction per event whose cost changed: an [`AgentEvent`] of
//! type [`COST_CORRECTION`] with the original's org, agent, workflow, run,
//! provider, model and timestamp (so it lands on the same partition, after
//! the original), attribute [`CORRECTS`] = the original's `event_id`, and
//! `cost_usd` = the new absolute cost (null: no price). No token counts.
//!
//! A correction is not an event: the projections never count it; they set
//! the original's cost and adjust every total by the difference. The gateway
//! never accepts this type from clients (it is not an [`crate::EventType`]).

use crate::AgentEvent;

/// `type` of a correction record.
pub const COST_CORRECTION: &str = "cost_correction";
/// Attribute naming the corrected event's `event_id`.
pub const CORRECTS: &str = "corrects";
/// `cost_source` of a corrected event.
pub const RECOMPUTED: &str = "recomputed";

/// Is this record a cost correction?
pub fn is_correction(e: &AgentEvent) -> bool {
    e.event_type == COST_CORRECTION
}

/// The event a correction corrects (None: not a well-formed correction).
pub fn corrects(e: &AgentEvent) -> Option<uuid::Uuid> {
    if !is_correction(e) {
        return None;
    }
    e.attributes
        .get(CORRECTS)
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_corrections_name_their_event() {
        let id = uuid::Uuid::new_v4();
        let mut e = AgentEvent {
            event_type: COST_CORRECTION.into(),
            ..Default::default()
        };
        assert!(is_correction(&e));
        assert_eq!(corrects(&e), None);
        e.attributes.insert(CORRECTS.into(), id.to_string());
        assert_eq!(corrects(&e), Some(id));
        e.event_type = "llm_call".into();
        assert_eq!(corrects(&e), None);
        assert!(crate::EventType::parse(COST_CORRECTION).is_none());
    }
}
