//! Alert rules (`/v1/admin/alert-rules`): the typed rule and its
//! validation are `agentops_governance::rule` (kinds, the fields each needs,
//! scopes); this is its place in the generic CRUD.

use agentops_governance::Rule;

use super::crud::Resource;

pub(crate) static RULES: Resource = Resource::of::<Rule>("alert_rules");
