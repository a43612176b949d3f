//! Policies (`/v1/admin/policies`): the typed policy and its validation
//! are `agentops_governance::policy` (kinds, limits, actions); this is its
//! place in the generic CRUD.

use agentops_governance::Policy;

use super::crud::Resource;

pub(crate) static POLICIES: Resource = Resource::of::<Policy>("policies");
