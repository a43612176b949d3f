from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

import agentops
from tests.support import Sink

MakeClient = Callable[..., agentops.Client]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def make_client(sink: Sink) -> Iterator[MakeClient]:
    """Clients against the sink (or `endpoint=`), shut down after the test."""
    made: List[agentops.Client] = []

    def make(**kw: Any) -> agentops.Client:
        kw.setdefault("endpoint", sink.url)
        kw.setdefault("api_key", "aok_test")
        kw.setdefault("flush_interval_ms", 50)
        kw.setdefault("backoff_base_s", 0.01)
        c = agentops.Client(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.shutdown(0.5)


@pytest.fixture(autouse=True)
def no_default_client() -> Iterator[None]:
    agentops._default = None
    yield
    c = agentops._default
    agentops._default = None
    if c is not None:
        c.shutdown(0.5)
