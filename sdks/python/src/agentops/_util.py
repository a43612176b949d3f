"""Small shared pieces: the logger, log-once, counters, field coercion."""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from typing import Any, Dict, Mapping, Optional, Set, Tuple

logger = logging.getLogger("agentops")

# Gateway bounds (schemas/src/validate.rs): identifiers at most 256 bytes, free
# text at most 4096 bytes, at most 64 attributes, token counts at most 1e8,
# latency at most 30 days, cost at most 1e6 USD.
MAX_ID_BYTES = 256
MAX_MESSAGE_BYTES = 4096
MAX_ATTRIBUTES = 64
MAX_TOKENS = 100_000_000
MAX_LATENCY_MS = 30 * 24 * 3600 * 1000
MAX_COST_USD = 1_000_000.0

STAT_NAMES = (
    "enqueued",
    "sent",
    "dropped_queue_full",
    "dropped_retry_budget",
    "dropped_shutdown",
    "rejected",
    "failed_requests",
    "retries",
    "errors",
)


class LogOnce:
    """Logs a message the first time its kind is seen, then stays quiet."""

    def __init__(self) -> None:
        self._seen: Set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, kind: str, msg: str, *args: object, level: int = logging.WARNING) -> None:
        with self._lock:
            if kind in self._seen:
                return
            self._seen.add(kind)
        try:
            logger.log(level, "agentops: " + msg, *args)
        except Exception:  # a broken handler must not reach agent code
            pass


class Stats:
    """Counters; each increment takes one short lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Dict[str, int] = {name: 0 for name in STAT_NAMES}

    def add(self, name: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._c[name] = self._c.get(name, 0) + n

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._c)


# Event ids: random UUIDs (version 4) from a generator of our own, seeded from
# os.urandom and reseeded in a forked child, so an app's random.seed() cannot
# repeat them (a repeated id would be deduplicated away downstream). About 4x
# cheaper than uuid.uuid4(), which reads os.urandom on every call.
_rng = random.Random()
_bits = _rng.getrandbits
_V4_CLEAR = ~((0xF000 << 64) | (0xC << 60))
_V4_SET = (0x4000 << 64) | (0x8 << 60)


def _reseed() -> None:
    global _bits
    _rng.seed(os.urandom(32))
    _bits = _rng.getrandbits


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_event_id() -> str:
    h = "%032x" % ((_bits(128) & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ts_cache: Tuple[int, str] = (-1, "")


def format_ts(ns: int) -> str:
    """RFC 3339 UTC with microseconds from epoch nanoseconds (the text up to
    the second is cached: a batch's events mostly share their second)."""
    global _ts_cache
    secs, frac = divmod(ns // 1000, 1_000_000)
    cached_secs, prefix = _ts_cache
    if cached_secs != secs:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        _ts_cache = (secs, prefix)
    return "%s.%06dZ" % (prefix, frac)


def truncate_utf8(s: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, cut at a character boundary."""
    if len(s) * 4 <= limit:
        return s
    b = s.encode("utf-8", "replace")
    if len(b) <= limit:
        return s
    return b[:limit].decode("utf-8", "ignore")


# What the gateway refuses in identifiers: C0 and C1 controls, DEL, line and
# paragraph separators.
_BAD_ID_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_id(value: object) -> Optional[str]:
    """An identifier as the gateway takes it, or None when there is none.

    Control characters (which the gateway refuses in identifiers) become '_'
    and the id is cut to 256 bytes, so one odd id does not lose the event.
    """
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    if not s:
        return None
    if _BAD_ID_CHARS.search(s) is not None:
        s = _BAD_ID_CHARS.sub("_", s)
    return truncate_utf8(s, MAX_ID_BYTES)


def count(value: object, limit: int = MAX_TOKENS) -> Optional[int]:
    """A non-negative integer count (tokens, latency), clamped to the gateway's bound."""
    if type(value) is int and 0 <= value <= limit:
        return value
    if type(value) is float and 0.0 <= value < limit:
        return int(value + 0.5)
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(f):
        return None
    if f <= 0:
        return 0
    if f >= limit:
        return limit
    return int(round(f))


def cost(value: object) -> Optional[float]:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(f) or f < 0:
        return None
    return min(f, MAX_COST_USD)


def message(value: object) -> Optional[str]:
    if value is None:
        return None
    try:
        s = value if isinstance(value, str) else str(value)
    except Exception:
        s = "<unprintable %s>" % type(value).__name__
    return truncate_utf8(s, MAX_MESSAGE_BYTES)


def attributes(value: Optional[Mapping[Any, Any]], log_once: LogOnce) -> Optional[Dict[str, str]]:
    """A string->string map the gateway accepts: values converted with str(),
    None values and those whose str() raises left out, at most 64 entries."""
    if not value:
        return None
    out: Dict[str, str] = {}
    try:
        items = list(value.items())
    except Exception:
        log_once("attrs-map", "attributes must be a mapping; left out")
        return None
    for k, v in items:
        if v is None:
            continue
        if len(out) >= MAX_ATTRIBUTES:
            log_once("attrs-many", "more than %d attributes on an event; the rest left out", MAX_ATTRIBUTES)
            break
        try:
            key = truncate_utf8(k if isinstance(k, str) else str(k), MAX_ID_BYTES)
            if isinstance(v, str):
                val = v
            elif isinstance(v, bool):
                val = "true" if v else "false"
            else:
                val = str(v)
        except Exception:
            log_once("attrs-str", "an attribute whose str() raised was left out")
            continue
        out[key] = truncate_utf8(val, MAX_MESSAGE_BYTES)
    return out or None
