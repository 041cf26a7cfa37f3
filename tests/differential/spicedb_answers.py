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
            for i in range(0, len(checks), 500):
                answers.extend(peer.check_bulk(checks[i:i + 500], FULL))  # fully consistent: see our writes
            out.append({"answers": answers})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
