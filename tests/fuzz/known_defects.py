"""Defects the fuzzers found that are reported but not fixed yet, so that CI stays green meanwhile.

Each entry names its regression test in ``test_regressions.py`` (marked
``xfail(strict=True)``). While a defect is listed, a fuzz test that hits it
rejects that example (``hypothesis.reject``) instead of failing, and keeps fuzzing
everything else. When the defect is fixed, its regression test passes, the strict
xfail turns that into a failure, and whoever fixed it removes the ``xfail`` marker
and the entry here (docs/fuzzing.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from hypothesis import reject



@dataclass(frozen=True)
class KnownDefect:
    """An exception of ``error`` whose message contains ``message``: the symptom of one reported defect."""

    regression_test: str
    error: type[BaseException]
    message: str

    def matches(self, exc: BaseException) -> bool:
        return isinstance(exc, self.error) and self.message in str(exc)


#: Every defect found and not fixed yet (empty when all are fixed).
KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


@dataclass(frozen=True)
class KnownRpcDefect:
    """A request to ``method`` for which ``request`` holds gets INTERNAL: the symptom of one reported defect."""

    regression_test: str
    method: str
    request: Callable[[Any], bool]  # the decoded request message -> does it show the defect?

    def matches(self, method: str, request: Any) -> bool:
        return method == self.method and self.request(request)


def _unreadable_context_json(request: Any) -> bool:
    """A context_json that ``json`` cannot read (nested too deeply) or that holds a lone surrogate."""
    try:
        value = json.loads(request.context_json)
        json.dumps(value, ensure_ascii=False).encode()
    except (RecursionError, UnicodeEncodeError):
        return True
    except ValueError:
        return False
    return False


#: Every defect found over gRPC and not fixed yet (empty when all are fixed).
KNOWN_RPC_DEFECTS: tuple[KnownRpcDefect, ...] = (
    KnownRpcDefect("test_replay_with_unreadable_context_json_is_invalid_argument", "/headwater.v1.AuditService/Replay",
                   _unreadable_context_json),
)


def known_rpc_defect(method: str, payloads: list[bytes], decode: Callable[[bytes], Any]) -> bool:
    """Whether a call that answered INTERNAL shows the symptom of a defect listed above."""
    for payload in payloads:
        try:
            request = decode(payload)
        except (DecodeError, RecursionError, ValueError):  # it does not decode: no known defect is about those
            continue
        if any(defect.matches(method, request) for defect in KNOWN_RPC_DEFECTS):
            return True
    return False


@contextmanager
def tolerating_known_defects() -> Iterator[None]:
    """Reject (rather than fail) an example that shows the symptom of a defect listed above."""
    try:
        yield
    except Exception as exc:
        if any(defect.matches(exc) for defect in KNOWN_DEFECTS):
            reject()
        raise
