//! Codex CLI rollout lines: `sources::codex::parse_line` and the mapper over
//! the input's lines (cumulative token totals, tool calls).
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    check(agentops_collector::sources::AgentKind::Codex, data);
});
