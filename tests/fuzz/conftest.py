"""Settings and fixtures of the fuzz tests: brief in CI, at length with ``HEADWATER_FUZZ=long`` (docs/fuzzing.md).

Every fuzz test takes its hypothesis settings from :func:`fuzz_settings`, built on
one of the two profiles registered here; no profile is *loaded*, so collecting this
folder changes nothing for the rest of the suite.

* ``HEADWATER_FUZZ`` unset (CI): each test runs its small ``examples`` count; the
  whole folder takes well under a minute on two cores.
* ``HEADWATER_FUZZ=long``: each test runs ``examples × HEADWATER_FUZZ_SCALE``
  (default 200) examples.

Hypothesis keeps the examples it found failing in ``.hypothesis/`` (git-ignored)
and replays them first on the next run on the same machine; a failure also prints
the example and a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

MODE = os.environ.get("HEADWATER_FUZZ", "ci").strip().lower() or "ci"
if MODE not in ("ci", "long"):
    raise pytest.UsageError(f"HEADWATER_FUZZ must be 'ci' or 'long', not {MODE!r}")
LONG = MODE == "long"
SCALE = int(os.environ.get("HEADWATER_FUZZ_SCALE", "200"))

#: Seconds one example may take before hypothesis fails it (generous: the machine is shared), and seconds
#: after which :func:`no_hang` ends the run with every thread's traceback (a hang never finishes an example).
DEADLINE_SECONDS = 5.0
HANG_SECONDS = 60.0

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.large_base_example]
settings.register_profile("headwater-fuzz-ci", deadline=timedelta(seconds=DEADLINE_SECONDS),
                          suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("headwater-fuzz-long", settings.get_profile("headwater-fuzz-ci"))


def fuzz_settings(examples: int, **overrides: object) -> settings:
    """Settings for one fuzz test: ``examples`` in CI, ``examples × SCALE`` with ``HEADWATER_FUZZ=long``."""
    profile = settings.get_profile(f"headwater-fuzz-{MODE}")
    return settings(profile, max_examples=examples * SCALE if LONG else examples, **overrides)  # type: ignore[arg-type]


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail loudly instead of hanging: past ``seconds``, print every thread's stack and end the process.

    A hypothesis deadline only judges an example that finishes; this catches one that never does.
    """
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


REPO = Path(__file__).resolve().parents[2]
