#!/usr/bin/env python3
"""Lag from a transcript line appended to its event visible in the query API.

Appends one Claude Code assistant message (with usage) per second to a
transcript under HOME/.claude/projects while `agentops-collector run` follows
HOME, and polls GET /v1/runs/<session> (read key) every 50 ms until the
run's event count grows: the time between the write and the first answer
that shows it. Prints p50/p99/max over --lines lines.

  agentops-collector --home H --state-dir S --endpoint $GW run &
  python3 collector/bench/lag.py H --query $QUERY --read-key $READ [--lines 40]
"""
import argparse, datetime, json, os, time, urllib.request, uuid


def now_iso():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def events(query, key, session):
    req = urllib.request.Request(f"{query}/v1/runs/{session}", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r).get("event_count", 0)
    except Exception:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("--query", required=True)
    ap.add_argument("--read-key", required=True)
    ap.add_argument("--lines", type=int, default=40)
    a = ap.parse_args()
    session = str(uuid.uuid4())
    cwd = os.path.join(a.home, "src", "lag")
    os.makedirs(cwd, exist_ok=True)
    path = os.path.join(a.home, ".claude", "projects", cwd.replace("/", "-"), session + ".jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lags, seen = [], 0
    for n in range(a.lines):
        line = {"parentUuid": None, "isSidechain": False, "type": "assistant", "cwd": cwd,
                "sessionId": session, "version": "2.0.14", "uuid": str(uuid.uuid4()),
                "timestamp": now_iso(), "requestId": f"req_{n}",
                "message": {"id": f"msg_{session}_{n}", "type": "message", "role": "assistant",
                            "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": "ok"}],
                            "stop_reason": "end_turn",
                            "usage": {"input_tokens": 10, "output_tokens": 5,
                                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
        written = time.monotonic()
        while True:
            c = events(a.query, a.read_key, session)
            if c > seen:
                seen = c
                lags.append(time.monotonic() - written)
                break
            if time.monotonic() - written > 60:
                lags.append(float("inf"))
                break
            time.sleep(0.05)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - written)))
    lags.sort()
    pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(json.dumps({"lines": len(lags), "p50_s": round(pick(0.5), 3), "p99_s": round(pick(0.99), 3),
                      "max_s": round(lags[-1], 3)}))


if __name__ == "__main__":
    main()
