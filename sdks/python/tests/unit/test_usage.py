"""Token mapping per provider (README "### Cost"): objects and dicts."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any, Dict

import pytest

from agentops import Usage, anthropic_usage, gemini_usage, openai_usage
from tests.support import Sink
from tests.unit.conftest import MakeClient


def counts(u: Usage) -> Dict[str, Any]:
    return {
        "input": u.input_tokens,
        "cache_read": u.cache_read_tokens,
        "cache_write": u.cache_write_tokens,
        "output": u.output_tokens,
        "reasoning": u.reasoning_tokens,
        "model": u.model,
    }


OPENAI_CHAT_DICT = {
    "id": "chatcmpl-1",
    "model": "gpt-4o-2024-08-06",
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0},
    },
}
OPENAI_CHAT_OBJ = NS(
    id="chatcmpl-1",
    model="gpt-4o-2024-08-06",
    usage=NS(
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        prompt_tokens_details=NS(cached_tokens=200, audio_tokens=0),
        completion_tokens_details=NS(reasoning_tokens=100, audio_tokens=0),
    ),
)
OPENAI_CHAT_EXPECTED = {
    "input": 1000,
    "cache_read": 200,
    "cache_write": None,
    "output": 200,
    "reasoning": 100,
    "model": "gpt-4o-2024-08-06",
}


@pytest.mark.parametrize("resp", [OPENAI_CHAT_DICT, OPENAI_CHAT_OBJ], ids=["dict", "object"])
def test_openai_chat_completions(resp: object) -> None:
    assert counts(openai_usage(resp)) == OPENAI_CHAT_EXPECTED


def test_openai_chat_without_details_counts_zero_cached_and_reasoning() -> None:
    resp = NS(
        model="gpt-4o-mini",
        usage=NS(prompt_tokens=50, completion_tokens=7, prompt_tokens_details=None, completion_tokens_details=None),
    )
    assert counts(openai_usage(resp)) == {
        "input": 50,
        "cache_read": 0,
        "cache_write": None,
        "output": 7,
        "reasoning": 0,
        "model": "gpt-4o-mini",
    }
    d = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 50, "completion_tokens": 7}}
    assert counts(openai_usage(d)) == counts(openai_usage(resp))


OPENAI_RESPONSES_DICT = {
    "id": "resp_1",
    "object": "response",
    "model": "o4-mini",
    "usage": {
        "input_tokens": 500,
        "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 80,
        "output_tokens_details": {"reasoning_tokens": 30},
        "total_tokens": 580,
    },
}
OPENAI_RESPONSES_OBJ = NS(
    id="resp_1",
    object="response",
    model="o4-mini",
    usage=NS(
        input_tokens=500,
        input_tokens_details=NS(cached_tokens=100),
        output_tokens=80,
        output_tokens_details=NS(reasoning_tokens=30),
        total_tokens=580,
    ),
)


@pytest.mark.parametrize("resp", [OPENAI_RESPONSES_DICT, OPENAI_RESPONSES_OBJ], ids=["dict", "object"])
def test_openai_responses_api(resp: object) -> None:
    assert counts(openai_usage(resp)) == {
        "input": 400,
        "cache_read": 100,
        "cache_write": None,
        "output": 50,
        "reasoning": 30,
        "model": "o4-mini",
    }


def test_openai_never_negative() -> None:
    # Inconsistent usage (more cached than prompt, more reasoning than completion).
    resp = {
        "model": "m",
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 40},
            "completion_tokens_details": {"reasoning_tokens": 9},
        },
    }
    u = openai_usage(resp)
    assert u.input_tokens == 0 and u.output_tokens == 0
    assert u.cache_read_tokens == 40 and u.reasoning_tokens == 9
    neg = {"usage": {"prompt_tokens": -3, "completion_tokens": None}}
    u = openai_usage(neg)
    assert (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens) == (0, 0, 0, 0)


def test_openai_bare_usage_and_missing_usage() -> None:
    assert counts(openai_usage(OPENAI_CHAT_OBJ.usage))["input"] == 1000
    assert counts(openai_usage({"model": "gpt-4o", "usage": None})) == {
        "input": None,
        "cache_read": None,
        "cache_write": None,
        "output": None,
        "reasoning": None,
        "model": "gpt-4o",
    }
    assert openai_usage(None) == Usage()


ANTHROPIC_DICT = {
    "id": "msg_1",
    "type": "message",
    "model": "claude-sonnet-4-5",
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 75,
    },
}
ANTHROPIC_OBJ = NS(
    id="msg_1",
    type="message",
    model="claude-sonnet-4-5",
    usage=NS(input_tokens=50, cache_creation_input_tokens=200, cache_read_input_tokens=1000, output_tokens=75),
)


@pytest.mark.parametrize("resp", [ANTHROPIC_DICT, ANTHROPIC_OBJ], ids=["dict", "object"])
def test_anthropic(resp: object) -> None:
    assert counts(anthropic_usage(resp)) == {
        "input": 50,
        "cache_read": 1000,
        "cache_write": 200,
        "output": 75,
        "reasoning": None,
        "model": "claude-sonnet-4-5",
    }


def test_anthropic_cache_fields_null_or_missing() -> None:
    obj = NS(model="claude-haiku-4-5", usage=NS(input_tokens=12, output_tokens=3, cache_read_input_tokens=None))
    assert counts(anthropic_usage(obj)) == {
        "input": 12,
        "cache_read": 0,
        "cache_write": 0,
        "output": 3,
        "reasoning": None,
        "model": "claude-haiku-4-5",
    }


GEMINI_OBJ = NS(
    model_version="gemini-2.5-flash",
    usage_metadata=NS(
        prompt_token_count=1000,
        cached_content_token_count=600,
        candidates_token_count=120,
        thoughts_token_count=40,
        total_token_count=1160,
    ),
)
GEMINI_REST_DICT = {
    "modelVersion": "gemini-2.5-flash",
    "usageMetadata": {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 120,
        "thoughtsTokenCount": 40,
        "totalTokenCount": 1160,
    },
}
GEMINI_SNAKE_DICT = {
    "model_version": "gemini-2.5-flash",
    "usage_metadata": {
        "prompt_token_count": 1000,
        "cached_content_token_count": 600,
        "candidates_token_count": 120,
        "thoughts_token_count": 40,
    },
}


@pytest.mark.parametrize(
    "resp", [GEMINI_OBJ, GEMINI_REST_DICT, GEMINI_SNAKE_DICT], ids=["object", "rest-dict", "snake-dict"]
)
def test_gemini(resp: object) -> None:
    assert counts(gemini_usage(resp)) == {
        "input": 400,
        "cache_read": 600,
        "cache_write": None,
        "output": 120,
        "reasoning": 40,
        "model": "gemini-2.5-flash",
    }


def test_gemini_without_cache_or_thoughts() -> None:
    obj = NS(usage_metadata=NS(prompt_token_count=30, candidates_token_count=9, cached_content_token_count=None))
    assert counts(gemini_usage(obj)) == {
        "input": 30,
        "cache_read": 0,
        "cache_write": None,
        "output": 9,
        "reasoning": 0,
        "model": None,
    }


def test_llm_call_helpers_send_mapped_events(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    c.llm_call_from_openai(OPENAI_CHAT_OBJ, latency_ms=850, attributes={"team": "support"})
    c.llm_call_from_anthropic(ANTHROPIC_DICT, latency_ms=410.6, cost_usd=0.01)
    c.llm_call_from_gemini(GEMINI_REST_DICT, 99, provider="vertex", model="gemini-x")
    c.llm_call_from_openai({"model": "gpt-4o"}, status="error", error_type="RateLimitError")
    assert c.flush(10)
    evs = sink.events()
    assert [e["type"] for e in evs] == ["llm_call"] * 4
    o, a, g, none = evs
    assert o["provider"] == "openai" and o["model"] == "gpt-4o-2024-08-06"
    assert (o["input_tokens"], o["cache_read_tokens"], o["output_tokens"], o["reasoning_tokens"]) == (1000, 200, 200, 100)
    assert "cache_write_tokens" not in o and o["latency_ms"] == 850 and o["attributes"] == {"team": "support"}
    assert a["provider"] == "anthropic" and a["latency_ms"] == 411 and a["cost_usd"] == 0.01
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"], a["output_tokens"]) == (50, 1000, 200, 75)
    assert "reasoning_tokens" not in a
    assert g["provider"] == "vertex" and g["model"] == "gemini-x" and g["latency_ms"] == 99
    assert (g["input_tokens"], g["cache_read_tokens"], g["output_tokens"], g["reasoning_tokens"]) == (400, 600, 120, 40)
    assert none["model"] == "gpt-4o" and none["status"] == "error" and none["error_type"] == "RateLimitError"
    assert not any(k.endswith("_tokens") for k in none)
    assert all(e["agent_id"] == "bot" for e in evs)
