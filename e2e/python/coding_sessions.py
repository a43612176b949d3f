#!/usr/bin/env python3
"""Coding-agent sessions on disk for e2e/tests/collector.rs.

Writes, under HOME, one repository checked out twice (`src/shop` and the
worktree-like clone `src/shop-wt`, both with origin git@github.com:Acme/Shop.git)
and the transcripts of three agents working in them, in the formats the
collector reads (see collector/tests/fixtures/make_fixtures.py): a Claude Code
session in `shop` (an assistant message split over two lines with repeated
usage, a tool use and its failed result), a Claude Code subagent of that
session (its own file, sidechain lines), and a Codex CLI session in `shop-wt`
(cumulative token totals, a shell call and its output). Times are minutes
before now. `--phase 2` appends a later step to the Claude session and to the
Codex session.

Prints the usage it wrote, per session, as one JSON line: what the
projections must hold (Codex's totals turned into the contract's tokens).
"""
import argparse, datetime, json, os

S1 = "e2e11111-7a0e-4f7e-9a51-0c6a2f1e9b01"
CX = "e2e22222-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
SON = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"


def j(o):
    return json.dumps(o, separators=(",", ":"))


def ago(minutes):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def cc(typ, uuid, parent, ts, cwd, side=False, **kw):
    o = {"parentUuid": parent, "isSidechain": side, "userType": "external", "cwd": cwd,
         "sessionId": S1, "version": "2.0.14", "gitBranch": "main", "type": typ}
    o.update(kw)
    o["uuid"] = uuid
    o["timestamp"] = ts
    return o


def usage(i, o, cw, cr):
    return {"input_tokens": i, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr,
            "output_tokens": o, "service_tier": "standard"}


def amsg(mid, model, content, u, stop=None):
    return {"id": mid, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": u}


def cx(ts, typ, payload):
    return j({"timestamp": ts, "type": typ, "payload": payload})


def tu(i, c, o, r):
    return {"input_tokens": i, "cached_input_tokens": c, "output_tokens": o,
            "reasoning_output_tokens": r, "total_tokens": i + o}


def append(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def repo(path):
    os.makedirs(os.path.join(path, ".git"), exist_ok=True)
    with open(os.path.join(path, ".git", "config"), "w") as f:
        f.write('[core]\n\trepositoryformatversion = 0\n[remote "origin"]\n'
                '\turl = git@github.com:Acme/Shop.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("--phase", type=int, default=1)
    a = ap.parse_args()
    shop, wt = os.path.join(a.home, "src", "shop"), os.path.join(a.home, "src", "shop-wt")
    enc = shop.replace("/", "-")
    main_file = os.path.join(a.home, ".claude", "projects", enc, S1 + ".jsonl")
    sub_file = os.path.join(a.home, ".claude", "projects", enc, S1, "subagents", "agent-e2e1.jsonl")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
    codex_file = os.path.join(a.home, ".codex", "sessions", day, f"rollout-e2e-{CX}.jsonl")
    if a.phase == 1:
        repo(shop)
        repo(wt)
        append(main_file, [
            j(cc("user", "e1000001-0000-4000-8000-000000000001", None, ago(30), shop,
                 message={"role": "user", "content": "Add a test"})),
            # One message over two lines, its usage repeated: counted once.
            j(cc("assistant", "e1000002-0000-4000-8000-000000000002", "e1000001-0000-4000-8000-000000000001",
                 ago(29.9), shop, requestId="req_e1",
                 message=amsg("msg_e1", SON, [{"type": "text", "text": "Running the tests."}],
                              usage(10, 40, 1000, 2000)))),
            j(cc("assistant", "e1000003-0000-4000-8000-000000000003", "e1000002-0000-4000-8000-000000000002",
                 ago(29.8), shop, requestId="req_e1",
                 message=amsg("msg_e1", SON, [{"type": "tool_use", "id": "toolu_e1", "name": "Bash",
                                               "input": {"command": "cargo test"}}],
                              usage(10, 42, 1000, 2000), "tool_use"))),
            j(cc("user", "e1000004-0000-4000-8000-000000000004", "e1000003-0000-4000-8000-000000000003",
                 ago(29.5), shop,
                 message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_e1",
                                                       "content": "test failed", "is_error": True}]})),
            j(cc("assistant", "e1000005-0000-4000-8000-000000000005", "e1000004-0000-4000-8000-000000000004",
                 ago(29.4), shop, requestId="req_e2",
                 message=amsg("msg_e2", SON, [{"type": "text", "text": "Fixed."}],
                              usage(3, 100, 0, 3000), "end_turn"))),
        ])
        append(sub_file, [
            j(cc("user", "e2000001-0000-4000-8000-000000000001", None, ago(29), shop, side=True,
                 agentId="e2e1", message={"role": "user", "content": "Search"})),
            j(cc("assistant", "e2000002-0000-4000-8000-000000000002", "e2000001-0000-4000-8000-000000000001",
                 ago(28.9), shop, side=True, agentId="e2e1", requestId="req_e3",
                 message=amsg("msg_e3", HAIKU, [{"type": "text", "text": "Found."}],
                              usage(4, 60, 0, 1000), "end_turn"))),
        ])
        append(codex_file, [
            cx(ago(20), "session_meta", {"id": CX, "timestamp": ago(20), "cwd": wt,
                                          "originator": "codex_cli_rs", "cli_version": "0.46.0",
                                          "source": "cli", "model_provider": "openai"}),
            cx(ago(19.9), "turn_context", {"cwd": wt, "approval_policy": "on-request",
                                            "sandbox_policy": {"type": "workspace-write"},
                                            "model": "gpt-5-codex", "effort": "medium", "summary": "auto"}),
            cx(ago(19.8), "response_item", {"type": "function_call", "name": "shell",
                                             "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_e1"}),
            cx(ago(19.8), "event_msg", {"type": "token_count", "info": {
                "total_token_usage": tu(5000, 1000, 300, 200), "last_token_usage": tu(5000, 1000, 300, 200)}}),
            cx(ago(19.7), "response_item", {"type": "function_call_output", "call_id": "call_e1",
                                             "output": "{\"output\":\"a\\n\",\"metadata\":{\"exit_code\":0,\"duration_seconds\":0.1}}"}),
        ])
        claude = {"input_tokens": 10 + 3 + 4, "output_tokens": 42 + 100 + 60,
                  "cache_write_tokens": 1000, "cache_read_tokens": 2000 + 3000 + 1000,
                  "llm_calls": 3, "tool_calls": 1}
        codex = {"input_tokens": 4000, "cache_read_tokens": 1000, "output_tokens": 100,
                 "reasoning_tokens": 200, "llm_calls": 1, "tool_calls": 1}
    else:
        append(main_file, [
            j(cc("user", "e1000006-0000-4000-8000-000000000006", "e1000005-0000-4000-8000-000000000005",
                 ago(2), shop, message={"role": "user", "content": "And the docs"})),
            j(cc("assistant", "e1000007-0000-4000-8000-000000000007", "e1000006-0000-4000-8000-000000000006",
                 ago(1.9), shop, requestId="req_e4",
                 message=amsg("msg_e4", SON, [{"type": "text", "text": "Done."}],
                              usage(5, 70, 500, 3100), "end_turn"))),
        ])
        append(codex_file, [
            cx(ago(1.5), "event_msg", {"type": "token_count", "info": {
                "total_token_usage": tu(11000, 6000, 500, 250), "last_token_usage": tu(6000, 5000, 200, 50)}}),
        ])
        claude = {"input_tokens": 17 + 5, "output_tokens": 202 + 70, "cache_write_tokens": 1500,
                  "cache_read_tokens": 6000 + 3100, "llm_calls": 4, "tool_calls": 1}
        codex = {"input_tokens": 4000 + 1000, "cache_read_tokens": 6000, "output_tokens": 250,
                 "reasoning_tokens": 250, "llm_calls": 2, "tool_calls": 1}
    print(json.dumps({"claude_session": S1, "codex_session": CX, "claude": claude, "codex": codex}))


if __name__ == "__main__":
    main()
