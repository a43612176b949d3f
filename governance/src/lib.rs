//! The governance vocabulary the processors (which evaluate it) and the
//! query API (which validates, stores and reports it) share, so both read
//! a budget, rule or policy the same way:
//!
//! - [`scope`]: scopes and budget periods;
//! - [`budget`], [`rule`], [`policy`]: the typed configuration items, each
//!   validated once from its JSON columns ([`config::Configuration`]) and
//!   read from its table by [`config::load`];
//! - [`spend`]: spend in a scope, the one query behind budget status and
//!   budget alerts;
//! - [`controls`]: the one writer of agent pauses and kills;
//! - [`alert`]: alert sources and ids; [`channel`]: channel kinds;
//! - [`fields`]: the field readers validation is built from;
//!   [`vocabulary`]: the enums of stored names.

pub mod alert;
pub mod budget;
pub mod channel;
pub mod config;
pub mod controls;
pub mod fields;
pub mod policy;
pub mod rule;
pub mod scope;
pub mod spend;
pub mod vocabulary;

pub use budget::Budget;
pub use config::{load, Configuration, Stored};
pub use fields::{FieldError, Obj};
pub use policy::{Policy, PolicyAction, PolicyKind};
pub use rule::{Condition, Rule, RuleKind};
pub use scope::{
    period_end, period_key, period_start, Period, Place, Scope, ScopeError, ScopeKind,
};
