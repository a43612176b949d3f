#!/usr/bin/env python3
"""Writes the AgentOps Grafana dashboards (dashboards/*.json) from this file.

    python3 deploy/grafana/generate.py      # rewrites deploy/grafana/dashboards/

Edit the panels here and run it again (the JSON files are committed: Grafana
provisions them as they are). Every query reads the views of schema `grafana`
(see docs/grafana.md), never `events`; aggregate panels read the coarsest
level that answers them, chosen per query by `grafana.level_for($__timeFrom(),
$__timeTo())`: minutes for ranges up to 6 hours, hours up to 31 days, days
beyond (and wherever the finer level's retention no longer reaches).
`e2e/tests/grafana.rs` runs every query of these files, as an org's Grafana
role, on both storage modes.
"""

import json
import os

DS = {"type": "grafana-postgresql-datasource", "uid": "agentops-pg"}
HERE = os.path.dirname(os.path.abspath(__file__))

# The levels of each family per granularity (`level_for`'s answer).
FAMILIES = {
    "org": {"minute": "agg_org_1m", "hour": "agg_org_1h", "day": "agg_org_1d"},
    "agent": {"minute": "agg_1m", "hour": "agg_agent_1h", "day": "agg_agent_1d"},
    "workflow": {"minute": "agg_1m", "hour": "agg_workflow_1h", "day": "agg_workflow_1d"},
    "model": {"minute": "agg_1m", "hour": "agg_model_1h", "day": "agg_model_1d"},
    # Every dimension (agent x workflow x provider x model).
    "all": {"minute": "agg_1m", "hour": "agg_1h", "day": "agg_1d"},
    # The per-tag levels have no minutes: the hour level answers short ranges.
    "tag": {"minute": "agg_tag_1h", "hour": "agg_tag_1h", "day": "agg_tag_1d"},
}


def leveled(family, columns, where=""):
    """`columns` of the family's rows whose bucket is in the dashboard range,
    from the one level `level_for` picks (the others' branches are cut by a
    one-time filter): a UNION ALL to select from."""
    levels = FAMILIES[family]
    branches = []
    for rel in dict.fromkeys(levels.values()):
        grains = [g for g, r in levels.items() if r == rel]
        pick = (
            f"= '{grains[0]}'"
            if len(grains) == 1
            else "IN (" + ", ".join(f"'{g}'" for g in grains) + ")"
        )
        branches.append(
            f"  SELECT {columns} FROM grafana.{rel}\n"
            f"  WHERE $__timeFilter(bucket) AND grafana.level_for($__timeFrom(), $__timeTo()) {pick}{where}"
        )
    return "(\n" + "\n  UNION ALL\n".join(branches) + "\n) x"


FINISHED = "(runs_completed + runs_failed)"
ERROR_RATE = f"100 * sum(runs_failed)::float8 / NULLIF(sum{FINISHED}, 0)"


def quantiles(qs=(0.5, 0.95, 0.99)):
    return ", ".join(
        f'grafana.hist_quantile(grafana.hist_sum(lat_hist), {q}) AS "p{round(q * 100)}"' for q in qs
    )


def target(sql, fmt):
    return {
        "refId": "A",
        "datasource": DS,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql.strip(),
    }


def panel(kind, title, sql, w, h, unit=None, description=None, overrides=None):
    fmt = "time_series" if kind == "timeseries" else "table"
    p = {
        "type": kind,
        "title": title,
        "datasource": DS,
        "targets": [target(sql, fmt)],
        "fieldConfig": {"defaults": {}, "overrides": overrides or []},
        "options": {},
        "_size": (w, h),
    }
    if description:
        p["description"] = description
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if kind == "stat":
        p["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
        }
    elif kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "fillOpacity": 10}
    elif kind == "table":
        p["options"] = {"showHeader": True}
    return p


def stat(title, sql, unit=None, description=None):
    return panel("stat", title, sql, 4, 4, unit, description)


def series(title, sql, unit=None, description=None, w=12):
    return panel("timeseries", title, sql, w, 8, unit, description)


def table(title, sql, unit=None, description=None, w=12, h=8):
    return panel("table", title, sql, w, h, unit, description)


def dashboard(uid, title, description, panels, variables=(), time_from="now-24h"):
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_size")
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        row_h = max(row_h, h)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["agentops"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": time_from, "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": list(variables)},
        "panels": panels,
    }


def variable(name, label, sql):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": sql,
        "definition": sql,
        "refresh": 1,
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "hide": 0,
    }


def fleet():
    org = "org"
    panels = [
        stat("Events", f"SELECT COALESCE(sum(events), 0)::float8 AS \"events\" FROM {leveled(org, 'events')}"),
        stat(
            "Runs finished",
            f"SELECT COALESCE(sum{FINISHED}, 0)::float8 AS \"runs\" FROM {leveled(org, 'runs_completed, runs_failed')}",
        ),
        stat(
            "Error rate",
            f"SELECT COALESCE({ERROR_RATE}, 0) AS \"error rate\" FROM {leveled(org, 'runs_completed, runs_failed')}",
            unit="percent",
            description="Failed runs per finished run.",
        ),
        stat(
            "Spend",
            f"SELECT COALESCE(sum(cost_usd), 0)::float8 AS \"spend\" FROM {leveled(org, 'cost_usd')}",
            unit="currencyUSD",
        ),
        stat(
            "Active agents",
            "SELECT count(DISTINCT agent_id)::float8 AS \"active agents\" "
            f"FROM {leveled('agent', 'agent_id, events')} WHERE events > 0",
            description="Agents with an event in the range.",
        ),
        stat(
            "Unpriced calls",
            f"SELECT COALESCE(sum(unpriced_calls), 0)::float8 AS \"unpriced calls\" FROM {leveled(org, 'unpriced_calls')}",
            description="LLM calls with tokens and no price for their model (see the cost dashboard).",
        ),
        series(
            "Events and runs",
            "SELECT bucket AS \"time\", sum(events)::float8 AS \"events\", sum(runs_started)::float8 AS \"runs started\",\n"
            f"  sum{FINISHED}::float8 AS \"runs finished\"\n"
            f"FROM {leveled(org, 'bucket, events, runs_started, runs_completed, runs_failed')}\n"
            "GROUP BY 1 ORDER BY 1",
        ),
        series(
            "Spend over time",
            "SELECT bucket AS \"time\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled(org, 'bucket, cost_usd')}\nGROUP BY 1 ORDER BY 1",
            unit="currencyUSD",
        ),
        series(
            "Error rate",
            f"SELECT bucket AS \"time\", {ERROR_RATE} AS \"error rate\"\n"
            f"FROM {leveled(org, 'bucket, runs_completed, runs_failed')}\nGROUP BY 1 ORDER BY 1",
            unit="percent",
        ),
        series(
            "Active agents",
            "SELECT bucket AS \"time\", count(DISTINCT agent_id)::float8 AS \"active agents\"\n"
            f"FROM {leveled('agent', 'bucket, agent_id, events')}\nWHERE events > 0\nGROUP BY 1 ORDER BY 1",
        ),
        series(
            "Unpriced calls",
            "SELECT bucket AS \"time\", sum(unpriced_calls)::float8 AS \"unpriced calls\"\n"
            f"FROM {leveled(org, 'bucket, unpriced_calls')}\nGROUP BY 1 ORDER BY 1",
        ),
        table(
            "Top agents by spend",
            "SELECT agent_id AS \"agent\", sum(cost_usd)::float8 AS \"spend_usd\", sum"
            f"{FINISHED}::float8 AS \"runs\",\n  sum(runs_failed)::float8 AS \"failed\", sum(events)::float8 AS \"events\"\n"
            f"FROM {leveled('agent', 'agent_id, cost_usd, runs_completed, runs_failed, events')}\n"
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
        ),
    ]
    return dashboard(
        "agentops-fleet",
        "AgentOps / Fleet overview",
        "Events, runs, errors, spend and active agents of the org (aggregate levels only).",
        panels,
    )


def cost():
    top = lambda family, key, n=10: (  # noqa: E731
        f"{key} IN (SELECT {key} FROM {leveled(family, f'{key}, cost_usd')} "
        f"GROUP BY 1 ORDER BY sum(cost_usd) DESC, 1 LIMIT {n})"
    )
    team = " AND tag_key = 'team'"
    panels = [
        stat(
            "Spend",
            f"SELECT COALESCE(sum(cost_usd), 0)::float8 AS \"spend\" FROM {leveled('org', 'cost_usd')}",
            unit="currencyUSD",
        ),
        stat(
            "LLM calls",
            f"SELECT COALESCE(sum(llm_calls), 0)::float8 AS \"llm calls\" FROM {leveled('org', 'llm_calls')}",
        ),
        stat(
            "Unpriced calls",
            f"SELECT COALESCE(sum(unpriced_calls), 0)::float8 AS \"unpriced calls\" FROM {leveled('org', 'unpriced_calls')}",
        ),
        stat(
            "Tokens",
            "SELECT COALESCE(sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens\n"
            "  + reasoning_tokens), 0)::float8 AS \"tokens\"\n"
            f"FROM {leveled('org', 'input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens')}",
        ),
        stat(
            "Spend per run",
            f"SELECT COALESCE(sum(cost_usd) / NULLIF(sum{FINISHED}, 0), 0)::float8 AS \"spend per run\"\n"
            f"FROM {leveled('org', 'cost_usd, runs_completed, runs_failed')}",
            unit="currencyUSD",
        ),
        stat(
            "Teams",
            "SELECT count(DISTINCT tag_value)::float8 AS \"teams\"\n"
            f"FROM {leveled('tag', 'tag_key, tag_value', team)}",
            description="Values of the `team` attribute with spend in the range.",
        ),
        series(
            "Spend over time",
            "SELECT bucket AS \"time\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('org', 'bucket, cost_usd')}\nGROUP BY 1 ORDER BY 1",
            unit="currencyUSD",
            w=24,
        ),
        series(
            "Spend by agent (top 10)",
            "SELECT bucket AS \"time\", agent_id AS \"metric\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('agent', 'bucket, agent_id, cost_usd')}\n"
            f"WHERE {top('agent', 'agent_id')}\nGROUP BY 1, 2 ORDER BY 1, 2",
            unit="currencyUSD",
        ),
        series(
            "Spend by team (top 10)",
            "SELECT bucket AS \"time\", tag_value AS \"metric\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('tag', 'bucket, tag_value, cost_usd', team)}\n"
            f"WHERE tag_value IN (SELECT tag_value FROM {leveled('tag', 'tag_value, cost_usd', team)}\n"
            "  GROUP BY 1 ORDER BY sum(cost_usd) DESC, 1 LIMIT 10)\nGROUP BY 1, 2 ORDER BY 1, 2",
            unit="currencyUSD",
            description="Events carrying the `team` attribute (database.storage.tag_keys).",
        ),
        series(
            "Spend by model (top 10)",
            "SELECT bucket AS \"time\", COALESCE(provider, '(none)') || '/' || COALESCE(model, '(none)') AS \"metric\",\n"
            "  sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('model', 'bucket, provider, model, cost_usd')}\n"
            f"WHERE model IS NOT NULL AND {top('model', 'model')}\nGROUP BY 1, 2 ORDER BY 1, 2",
            unit="currencyUSD",
        ),
        series(
            "Spend by workflow (top 10)",
            "SELECT bucket AS \"time\", COALESCE(workflow_id, '(none)') AS \"metric\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('workflow', 'bucket, workflow_id, cost_usd')}\n"
            f"WHERE {top('workflow', 'workflow_id')}\nGROUP BY 1, 2 ORDER BY 1, 2",
            unit="currencyUSD",
        ),
        table(
            "Spend by agent",
            "SELECT agent_id AS \"agent\", sum(cost_usd)::float8 AS \"spend_usd\", sum(llm_calls)::float8 AS \"llm_calls\",\n"
            f"  sum{FINISHED}::float8 AS \"runs\", sum(unpriced_calls)::float8 AS \"unpriced_calls\"\n"
            f"FROM {leveled('agent', 'agent_id, cost_usd, llm_calls, runs_completed, runs_failed, unpriced_calls')}\n"
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100",
        ),
        table(
            "Spend by team",
            "SELECT tag_value AS \"team\", sum(cost_usd)::float8 AS \"spend_usd\", sum(llm_calls)::float8 AS \"llm_calls\",\n"
            f"  sum{FINISHED}::float8 AS \"runs\", sum(unpriced_calls)::float8 AS \"unpriced_calls\"\n"
            f"FROM {leveled('tag', 'tag_value, cost_usd, llm_calls, runs_completed, runs_failed, unpriced_calls', team)}\n"
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 100",
        ),
        table(
            "Spend by model and provider",
            "SELECT provider, model, sum(cost_usd)::float8 AS \"spend_usd\", sum(llm_calls)::float8 AS \"llm_calls\",\n"
            "  sum(input_tokens + output_tokens)::float8 AS \"tokens\", sum(unpriced_calls)::float8 AS \"unpriced_calls\"\n"
            f"FROM {leveled('model', 'provider, model, cost_usd, llm_calls, input_tokens, output_tokens, unpriced_calls')}\n"
            "WHERE model IS NOT NULL\nGROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 100",
        ),
        table(
            "Unpriced models",
            "SELECT provider, model, sum(unpriced_calls)::float8 AS \"unpriced_calls\"\n"
            f"FROM {leveled('model', 'provider, model, unpriced_calls')}\n"
            "WHERE unpriced_calls > 0\nGROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 100",
            description="Models called with tokens and no price: add one (admin set-price, the console's prices page).",
        ),
    ]
    return dashboard(
        "agentops-cost",
        "AgentOps / Cost",
        "Spend by agent, team (the `team` attribute), model, provider and workflow, over time and as tables.",
        panels,
    )


def errors():
    org = "org"
    panels = [
        stat(
            "Failed runs",
            f"SELECT COALESCE(sum(runs_failed), 0)::float8 AS \"failed runs\" FROM {leveled(org, 'runs_failed')}",
        ),
        stat(
            "Error rate",
            f"SELECT COALESCE({ERROR_RATE}, 0) AS \"error rate\" FROM {leveled(org, 'runs_completed, runs_failed')}",
            unit="percent",
        ),
        stat(
            "Errors",
            f"SELECT COALESCE(sum(errors), 0)::float8 AS \"errors\" FROM {leveled(org, 'errors')}",
            description="Failed runs and events whose status is error or failed.",
        ),
        stat(
            "Latency p50",
            f"SELECT {quantiles((0.5,))} FROM {leveled(org, 'lat_hist')}",
            unit="ms",
        ),
        stat(
            "Latency p95",
            f"SELECT {quantiles((0.95,))} FROM {leveled(org, 'lat_hist')}",
            unit="ms",
        ),
        stat(
            "Latency p99",
            f"SELECT {quantiles((0.99,))} FROM {leveled(org, 'lat_hist')}",
            unit="ms",
        ),
        series(
            "Error rate",
            f"SELECT bucket AS \"time\", {ERROR_RATE} AS \"error rate\"\n"
            f"FROM {leveled(org, 'bucket, runs_completed, runs_failed')}\nGROUP BY 1 ORDER BY 1",
            unit="percent",
        ),
        series(
            "Failed runs and errors",
            "SELECT bucket AS \"time\", sum(runs_failed)::float8 AS \"failed runs\", sum(errors)::float8 AS \"errors\"\n"
            f"FROM {leveled(org, 'bucket, runs_failed, errors')}\nGROUP BY 1 ORDER BY 1",
        ),
        series(
            "Run latency p50 / p95 / p99",
            f"SELECT bucket AS \"time\", {quantiles()}\n"
            f"FROM {leveled(org, 'bucket, lat_hist')}\nGROUP BY 1 ORDER BY 1",
            unit="ms",
            description="From the latency histogram columns merged per bucket, as the query API does "
            "(nearest rank, the bucket's geometric middle).",
            w=24,
        ),
        table(
            "Latency by agent",
            "SELECT agent_id AS \"agent\", sum"
            f"{FINISHED}::float8 AS \"runs\", {quantiles()}\n"
            f"FROM {leveled('agent', 'agent_id, runs_completed, runs_failed, lat_hist')}\n"
            f"GROUP BY 1 HAVING sum{FINISHED} > 0 ORDER BY 4 DESC NULLS LAST, 1 LIMIT 100",
            unit="ms",
        ),
        table(
            "Errors by agent",
            "SELECT agent_id AS \"agent\", sum(runs_failed)::float8 AS \"failed_runs\", sum(errors)::float8 AS \"errors\",\n"
            f"  {ERROR_RATE} AS \"error_rate\"\n"
            f"FROM {leveled('agent', 'agent_id, runs_completed, runs_failed, errors')}\n"
            "GROUP BY 1 HAVING sum(errors) > 0 ORDER BY 3 DESC, 1 LIMIT 100",
        ),
        table(
            "Failed runs",
            "SELECT ended_at, run_id, agent_id, workflow_id, error_type, error_message, latency_ms, cost_usd\n"
            "FROM grafana.runs\nWHERE status = 'failed' AND $__timeFilter(ended_at)\n"
            "ORDER BY ended_at DESC LIMIT 100",
            w=24,
            description="The latest failed runs that ended in the range.",
        ),
    ]
    return dashboard(
        "agentops-errors",
        "AgentOps / Errors and latency",
        "Error rate, failed runs and run latency percentiles from the histogram columns.",
        panels,
    )


def budgets():
    spend = """
SELECT COALESCE(sum(cost_usd), 0)::float8 AS spend FROM (
  SELECT cost_usd FROM grafana.agg_org_1d
  WHERE b.scope_kind = 'org' AND bucket >= p.start
  UNION ALL
  SELECT cost_usd FROM grafana.agg_agent_1d
  WHERE b.scope_kind = 'agent' AND agent_id = b.scope_value AND bucket >= p.start
  UNION ALL
  SELECT cost_usd FROM grafana.agg_workflow_1d
  WHERE b.scope_kind = 'workflow' AND workflow_id = b.scope_value AND bucket >= p.start
  UNION ALL
  SELECT cost_usd FROM grafana.agg_model_1d
  WHERE b.scope_kind = 'model' AND model = b.scope_value AND bucket >= p.start
  UNION ALL
  SELECT cost_usd FROM grafana.agg_tag_1d
  WHERE b.scope_kind = 'tag' AND tag_key = split_part(b.scope_value, '=', 1)
    AND tag_value = substr(b.scope_value, strpos(b.scope_value, '=') + 1) AND bucket >= p.start
) u""".strip()
    status = f"""
SELECT b.name, b.scope_kind, b.scope_value, b.period, p.start AS period_start, b.limit_usd,
  s.spend AS spend_usd, 100 * s.spend / b.limit_usd AS percent
FROM grafana.budgets b
CROSS JOIN LATERAL (SELECT date_trunc(b.period, now(), 'UTC') AS start) p
CROSS JOIN LATERAL ({spend}) s""".strip()
    panels = [
        stat(
            "Budgets at or over their limit",
            f"SELECT count(*) FILTER (WHERE percent >= 100)::float8 AS \"over limit\" FROM ({status}) st",
        ),
        stat(
            "Budgets past 80%",
            f"SELECT count(*) FILTER (WHERE percent >= 80)::float8 AS \"past 80%\" FROM ({status}) st",
        ),
        stat(
            "Paused or killed agents",
            "SELECT count(*)::float8 AS \"controlled agents\" FROM grafana.agent_controls",
        ),
        stat(
            "Firing alerts",
            "SELECT count(*)::float8 AS \"firing alerts\" FROM grafana.alerts WHERE state = 'firing'",
        ),
        table(
            "Budgets: spend against the limit, current period",
            f"SELECT * FROM ({status}) st\nORDER BY percent DESC, name",
            description="Each budget's spend since the start of its UTC day, week (Monday) or month, read "
            "from the day levels (a tag budget from agg_tag_1d: its key must be one of "
            "database.storage.tag_keys).",
            w=24,
        ),
        table(
            "Paused and killed agents",
            "SELECT agent_id, action, reason, set_by, set_at, alert_id\nFROM grafana.agent_controls\n"
            "ORDER BY set_at DESC LIMIT 200",
        ),
        table(
            "Firing alerts",
            "SELECT created_at, source, severity, kind, message, value, threshold\nFROM grafana.alerts\n"
            "WHERE state = 'firing'\nORDER BY created_at DESC LIMIT 200",
        ),
    ]
    return dashboard(
        "agentops-budgets",
        "AgentOps / Budgets and alerts",
        "Budgets with spend against the limit for the current period, paused agents and firing alerts "
        "(current state: the time range does not apply).",
        panels,
    )


def agent():
    where = " AND org_id = '$org' AND agent_id = '$agent'"
    panels = [
        table(
            "Agent",
            "SELECT a.agent_id,\n"
            "  CASE c.action WHEN 'pause' THEN 'paused' WHEN 'kill' THEN 'killed'\n"
            "    ELSE CASE WHEN a.last_seen > now() - interval '5 minutes' THEN 'active' ELSE 'idle' END END AS status,\n"
            "  a.first_seen, a.last_seen, a.last_heartbeat, a.heartbeat_status, c.reason AS control_reason, c.set_by AS control_set_by\n"
            "FROM grafana.agents a\n"
            "LEFT JOIN grafana.agent_controls c ON c.org_id = a.org_id AND c.agent_id = a.agent_id\n"
            "WHERE a.org_id = '$org' AND a.agent_id = '$agent'",
            w=24,
            h=4,
        ),
        stat(
            "Runs finished",
            f"SELECT COALESCE(sum{FINISHED}, 0)::float8 AS \"runs\" FROM {leveled('agent', 'runs_completed, runs_failed', where)}",
        ),
        stat(
            "Failed runs",
            f"SELECT COALESCE(sum(runs_failed), 0)::float8 AS \"failed\" FROM {leveled('agent', 'runs_failed', where)}",
        ),
        stat(
            "Error rate",
            f"SELECT COALESCE({ERROR_RATE}, 0) AS \"error rate\" FROM {leveled('agent', 'runs_completed, runs_failed', where)}",
            unit="percent",
        ),
        stat(
            "Spend",
            f"SELECT COALESCE(sum(cost_usd), 0)::float8 AS \"spend\" FROM {leveled('agent', 'cost_usd', where)}",
            unit="currencyUSD",
        ),
        stat(
            "Latency p50",
            f"SELECT {quantiles((0.5,))} FROM {leveled('agent', 'lat_hist', where)}",
            unit="ms",
        ),
        stat(
            "Latency p95",
            f"SELECT {quantiles((0.95,))} FROM {leveled('agent', 'lat_hist', where)}",
            unit="ms",
        ),
        series(
            "Runs and failures",
            f"SELECT bucket AS \"time\", sum{FINISHED}::float8 AS \"runs\", sum(runs_failed)::float8 AS \"failed\"\n"
            f"FROM {leveled('agent', 'bucket, runs_completed, runs_failed', where)}\nGROUP BY 1 ORDER BY 1",
        ),
        series(
            "Spend over time",
            "SELECT bucket AS \"time\", sum(cost_usd)::float8 AS \"spend\"\n"
            f"FROM {leveled('agent', 'bucket, cost_usd', where)}\nGROUP BY 1 ORDER BY 1",
            unit="currencyUSD",
        ),
        series(
            "Run latency p50 / p95 / p99",
            f"SELECT bucket AS \"time\", {quantiles()}\n"
            f"FROM {leveled('agent', 'bucket, lat_hist', where)}\nGROUP BY 1 ORDER BY 1",
            unit="ms",
        ),
        table(
            "Models",
            "SELECT provider, model, sum(llm_calls)::float8 AS \"llm_calls\", sum(cost_usd)::float8 AS \"spend_usd\",\n"
            "  sum(unpriced_calls)::float8 AS \"unpriced_calls\"\n"
            f"FROM {leveled('all', 'provider, model, llm_calls, cost_usd, unpriced_calls', where)}\n"
            "WHERE model IS NOT NULL\nGROUP BY 1, 2 ORDER BY 4 DESC, 1, 2 LIMIT 50",
        ),
        table(
            "Recent runs",
            "SELECT started_at, run_id, workflow_id, status, latency_ms, cost_usd, llm_calls, tool_calls, error_type\n"
            "FROM grafana.runs\nWHERE org_id = '$org' AND agent_id = '$agent' AND $__timeFilter(started_at)\n"
            "ORDER BY started_at DESC LIMIT 50",
            w=24,
        ),
    ]
    return dashboard(
        "agentops-agent",
        "AgentOps / Agent detail",
        "One agent: status, runs, failures, spend, latency, models and recent runs.",
        panels,
        variables=[
            variable("org", "Org", "SELECT org_id FROM grafana.orgs ORDER BY 1"),
            variable(
                "agent",
                "Agent",
                "SELECT agent_id FROM grafana.agents WHERE org_id = '$org' ORDER BY 1",
            ),
        ],
    )


def main():
    out = os.path.join(HERE, "dashboards")
    os.makedirs(out, exist_ok=True)
    for name, build in [
        ("fleet-overview", fleet),
        ("cost", cost),
        ("errors-latency", errors),
        ("budgets", budgets),
        ("agent-detail", agent),
    ]:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(build(), f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
