"""Token usage read from provider responses, mapped to the AgentOps convention.

The convention (README "### Cost"): `input_tokens` are uncached input only,
cache reads and writes are counted apart, `output_tokens` exclude reasoning and
`reasoning_tokens` are counted apart. No provider library is imported: the
responses are read by duck typing, as objects (attributes) or dicts (keys), in
snake_case or camelCase, so the SDKs' objects, their `model_dump()` dicts and
raw REST JSON all work. A missing sub-field counts 0; a count the provider does
not report is None (left out of the event); no count is ever negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Usage:
    """Token counts in the AgentOps convention (None: not reported)."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cache_read_tokens: Optional[int] = None
    cache_write_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    model: Optional[str] = None


_MISSING = object()


def _get(obj: object, *names: str) -> object:
    """The first of `names` present on `obj` (dict key or attribute), else None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        for n in names:
            v = obj.get(n, _MISSING)
            if v is not _MISSING:
                return v
        return None
    for n in names:
        try:
            v = getattr(obj, n, _MISSING)
        except Exception:
            continue
        if v is not _MISSING:
            return v
    return None


def _n(value: object) -> int:
    """A token count: a non-negative int, 0 for anything missing or odd."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if value > 0 else 0
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0
    if f != f or f <= 0:
        return 0
    return int(f)


def _has(obj: object, *names: str) -> bool:
    return _get(obj, *names) is not None


def _model(response: object, *names: str) -> Optional[str]:
    m = _get(response, *names)
    return m if isinstance(m, str) and m else None


def openai_usage(response: object) -> Usage:
    """OpenAI Chat Completions (`usage.prompt_tokens`, ...) or Responses API
    (`usage.input_tokens`, ...) shapes; also a bare usage object."""
    model = _model(response, "model")
    usage = _get(response, "usage")
    if usage is None:
        if _has(response, "prompt_tokens", "input_tokens", "completion_tokens", "output_tokens"):
            usage = response
        else:
            return Usage(model=model)
    if _has(usage, "prompt_tokens", "completion_tokens"):
        prompt = _n(_get(usage, "prompt_tokens"))
        cached = _n(_get(_get(usage, "prompt_tokens_details"), "cached_tokens"))
        completion = _n(_get(usage, "completion_tokens"))
        reasoning = _n(_get(_get(usage, "completion_tokens_details"), "reasoning_tokens"))
    else:  # Responses API
        prompt = _n(_get(usage, "input_tokens"))
        cached = _n(_get(_get(usage, "input_tokens_details"), "cached_tokens"))
        completion = _n(_get(usage, "output_tokens"))
        reasoning = _n(_get(_get(usage, "output_tokens_details"), "reasoning_tokens"))
    return Usage(
        input_tokens=max(0, prompt - cached),
        cache_read_tokens=cached,
        output_tokens=max(0, completion - reasoning),
        reasoning_tokens=reasoning,
        model=model,
    )


def anthropic_usage(response: object) -> Usage:
    """Anthropic Messages: `usage.input_tokens` already excludes both cache
    counts; thinking is inside `output_tokens` (no reasoning count)."""
    model = _model(response, "model")
    usage = _get(response, "usage")
    if usage is None:
        if _has(response, "input_tokens", "output_tokens"):
            usage = response
        else:
            return Usage(model=model)
    return Usage(
        input_tokens=_n(_get(usage, "input_tokens")),
        cache_read_tokens=_n(_get(usage, "cache_read_input_tokens")),
        cache_write_tokens=_n(_get(usage, "cache_creation_input_tokens")),
        output_tokens=_n(_get(usage, "output_tokens")),
        model=model,
    )


def gemini_usage(response: object) -> Usage:
    """Gemini `usage_metadata` / `usageMetadata`: the prompt count includes the
    cached content; thoughts are apart from the candidates."""
    model = _model(response, "model_version", "modelVersion", "model")
    usage = _get(response, "usage_metadata", "usageMetadata")
    if usage is None:
        if _has(response, "prompt_token_count", "promptTokenCount", "candidates_token_count", "candidatesTokenCount"):
            usage = response
        else:
            return Usage(model=model)
    prompt = _n(_get(usage, "prompt_token_count", "promptTokenCount"))
    cached = _n(_get(usage, "cached_content_token_count", "cachedContentTokenCount"))
    return Usage(
        input_tokens=max(0, prompt - cached),
        cache_read_tokens=cached,
        output_tokens=_n(_get(usage, "candidates_token_count", "candidatesTokenCount")),
        reasoning_tokens=_n(_get(usage, "thoughts_token_count", "thoughtsTokenCount")),
        model=model,
    )
