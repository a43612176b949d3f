//! Claude Code transcript lines: `sources::claude::parse_line` and the
//! mapper over the input's lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    check(agentops_collector::sources::AgentKind::ClaudeCode, data);
});
