#!/usr/bin/env python3
"""Generate a large set of Claude Code transcripts and Codex rollouts under a
fake home, for measuring the collector (collector/README.md "Figures").

  python3 collector/bench/gen.py HOME [--sessions 200] [--turns 500]

Each Claude Code turn is a prompt, an assistant message split over two lines
(thinking, then tool_use, repeated usage), and a tool result with ~1 KiB of
output; each Codex turn a user message, a function call, its output and a
token_count. Timestamps are spread over the last 2 days (inside the gateway's
late window)."""
import argparse, datetime, json, os, random

p = argparse.ArgumentParser()
p.add_argument("home")
p.add_argument("--sessions", type=int, default=200)
p.add_argument("--turns", type=int, default=500)
a = p.parse_args()

rnd = random.Random(7)
now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
start = now - datetime.timedelta(days=2)
PAD = "x" * 1024

def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

def dump(o):
    return json.dumps(o, separators=(",", ":"))

lines_total = 0
for s in range(a.sessions):
    t = start + datetime.timedelta(seconds=rnd.randrange(0, 40 * 3600))
    if s % 2 == 0:
        sid = "%08x-1111-4111-8111-%012x" % (s, s)
        d = os.path.join(a.home, ".claude/projects/-home-dev-src-repo%d" % (s % 7))
        os.makedirs(d, exist_ok=True)
        out = []
        base = {"sessionId": sid, "cwd": "/home/dev/src/repo%d" % (s % 7), "gitBranch": "main",
                "isSidechain": False, "userType": "external", "version": "2.0.14"}
        for i in range(a.turns):
            t += datetime.timedelta(seconds=3)
            out.append(dict(base, type="user", uuid="u%d-%d" % (s, i), timestamp=ts(t),
                            message={"role": "user", "content": "step %d: %s" % (i, PAD[:200])}))
            t += datetime.timedelta(seconds=2)
            u = {"input_tokens": 5 + i % 7, "output_tokens": 100 + i % 50,
                 "cache_read_input_tokens": 20000 + i, "cache_creation_input_tokens": 300}
            mid = "msg_%d_%d" % (s, i)
            out.append(dict(base, type="assistant", uuid="a%d-%d" % (s, i), timestamp=ts(t), requestId="req_" + mid,
                            message={"id": mid, "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                                     "content": [{"type": "thinking", "thinking": PAD[:300], "signature": "s"}],
                                     "usage": u}))
            out.append(dict(base, type="assistant", uuid="b%d-%d" % (s, i), timestamp=ts(t), requestId="req_" + mid,
                            message={"id": mid, "model": "claude-sonnet-4-5-20250929", "role": "assistant",
                                     "content": [{"type": "tool_use", "id": "tu_%d_%d" % (s, i), "name": "Bash",
                                                  "input": {"command": "cargo test -p crate%d" % i}}],
                                     "usage": u}))
            t += datetime.timedelta(seconds=4)
            out.append(dict(base, type="user", uuid="r%d-%d" % (s, i), timestamp=ts(t),
                            message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_%d_%d" % (s, i),
                                                                  "content": PAD, "is_error": i % 13 == 0}]}))
        with open(os.path.join(d, sid + ".jsonl"), "w") as f:
            f.write("\n".join(dump(o) for o in out) + "\n")
        lines_total += len(out)
    else:
        sid = "0199%04x-c3d4-7e5f-8a9b-%012x" % (s, s)
        d = os.path.join(a.home, ".codex/sessions", t.strftime("%Y/%m/%d"))
        os.makedirs(d, exist_ok=True)
        out = [{"timestamp": ts(t), "type": "session_meta", "payload": {
            "id": sid, "timestamp": ts(t), "cwd": "/home/dev/src/repo%d" % (s % 7), "originator": "codex_cli_rs",
            "cli_version": "0.46.0", "model_provider": "openai",
            "git": {"branch": "main", "repository_url": "git@github.com:acme/repo%d.git" % (s % 7)}}},
               {"timestamp": ts(t), "type": "turn_context", "payload": {"model": "gpt-5-codex", "cwd": "/x"}}]
        tot = [0, 0, 0, 0]
        for i in range(a.turns):
            t += datetime.timedelta(seconds=3)
            out.append({"timestamp": ts(t), "type": "event_msg", "payload": {"type": "user_message", "message": "step %d %s" % (i, PAD[:200])}})
            out.append({"timestamp": ts(t), "type": "response_item", "payload": {"type": "function_call", "name": "shell",
                        "arguments": dump({"command": ["cargo", "test", str(i)]}), "call_id": "c%d" % i}})
            tot = [tot[0] + 4000 + i, tot[1] + 3000, tot[2] + 200, tot[3] + 50]
            out.append({"timestamp": ts(t), "type": "event_msg", "payload": {"type": "token_count", "info": {
                "total_token_usage": {"input_tokens": tot[0], "cached_input_tokens": tot[1], "output_tokens": tot[2],
                                      "reasoning_output_tokens": tot[3], "total_tokens": tot[0] + tot[2]}}}})
            t += datetime.timedelta(seconds=4)
            out.append({"timestamp": ts(t), "type": "response_item", "payload": {"type": "function_call_output", "call_id": "c%d" % i,
                        "output": dump({"output": PAD, "metadata": {"exit_code": 1 if i % 13 == 0 else 0}})}})
        with open(os.path.join(d, "rollout-%s-%s.jsonl" % (t.strftime("%Y-%m-%dT%H-%M-%S"), sid)), "w") as f:
            f.write("\n".join(dump(o) for o in out) + "\n")
        lines_total += len(out)
print("sessions", a.sessions, "lines", lines_total)
