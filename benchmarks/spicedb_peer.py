"""Run by the SpiceDB peer's Python (not Headwater's): real SpiceDB, driven by ``benchmarks.run`` over pipes.

    $PEERS_PY benchmarks/spicedb_peer.py      # HEADWATER_PEERS_DIR names ../shared/peers

One embedded SpiceDB (in-memory datastore, SpiceDB's caches off: see the peer's
README) answers requests, one JSON object per line on stdin, one JSON answer per
line on stdout. Times are measured here, around each call to SpiceDB (request
serialization, the FFI call and the response parsing included), so the pipe to
Headwater's process is not counted. Every check uses full consistency, like
Headwater's default (the head revision).

Requests (``op``): ``info``, ``load`` (schema + a relationship file, CREATE in
batches), ``checks`` (sequential CheckPermission, stopping after ``budget_s``),
``bulk`` (CheckBulkPermissions in chunks), ``lookup`` (LookupResources, streamed),
``writes`` (one WriteRelationships TOUCH per relationship), ``rss``, ``quit``.
"""

from __future__ import annotations

import json
import os
import sys
import time

# The protocol owns the original stdout; anything else printing (the native library) goes to stderr.
_PROTOCOL = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)

sys.path.insert(0, os.environ["HEADWATER_PEERS_DIR"])
from authzed.api.v1 import LookupResourcesRequest
from authzed.api.v1.permission_service_pb2_grpc import PermissionsServiceStub
from spicedb_embed import (
    FULL,
    Peer,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    check_request,
    error_text,
    parse_relationship,
    parse_subject,
    result_of,
    rss_mib,
    versions,
)


def _answer(check: list[str], perms: object) -> tuple[str, float]:
    resource, permission, subject = check
    req = check_request({"resource": resource, "permission": permission, "subject": subject}, FULL)
    t = time.perf_counter()
    try:
        out = result_of(perms.CheckPermission(req))["result"]  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001  (SpiceDB's errors, e.g. max depth)
        out = "ERROR: " + error_text(exc)
    return out, (time.perf_counter() - t) * 1e6


class Server:
    def __init__(self) -> None:
        self.baseline = rss_mib()
        self.peer = Peer()
        self.started = rss_mib()

    def info(self, req: dict) -> dict:
        return {"versions": versions(), "rss_at_import": self.baseline, "rss_after_start": self.started}

    def load(self, req: dict) -> dict:
        self.peer.write_schema(req["schema"])
        before = rss_mib()
        op = RelationshipUpdate.Operation.OPERATION_CREATE
        batch_size = int(req.get("batch", 1000))
        n = 0
        spent = 0.0
        with open(req["relationships_file"]) as f:
            batch: list[str] = []
            for line in f:
                line = line.strip()
                if line:
                    batch.append(line)
                if len(batch) == batch_size:
                    spent += self._write(batch, op)
                    n += len(batch)
                    batch = []
            if batch:
                spent += self._write(batch, op)
                n += len(batch)
        return {"relationships": n, "seconds": spent, "rss_before": before, "rss_after": rss_mib()}

    def _write(self, rels: list[str], op: int) -> float:
        # Parsing into protobufs is not SpiceDB's work: only the call is timed.
        request = WriteRelationshipsRequest(updates=[RelationshipUpdate(operation=op, relationship=parse_relationship(r))
                                                     for r in rels])
        t = time.perf_counter()
        self.peer.perms.WriteRelationships(request)
        return time.perf_counter() - t

    def checks(self, req: dict) -> dict:
        budget = float("inf") if req.get("budget_s") is None else float(req["budget_s"])
        results, latencies = [], []
        start = time.perf_counter()
        for check in req["checks"]:
            if latencies and time.perf_counter() - start > budget:
                break
            out, us = _answer(check, self.peer.perms)
            results.append(out)
            latencies.append(us)
        return {"results": results, "latencies_us": latencies}

    def bulk(self, req: dict) -> dict:
        chunk = int(req.get("chunk", 1000))
        checks = req["checks"]
        results: list[str] = []
        seconds: list[float] = []
        for i in range(0, len(checks), chunk):
            items = [{"resource": r, "permission": p, "subject": s} for r, p, s in checks[i:i + chunk]]
            t = time.perf_counter()
            try:
                answers = self.peer.check_bulk(items, FULL)
                results.extend(a["result"] if a["result"] != "ERROR" else "ERROR: " + a.get("error", "")
                               for a in answers)
            except Exception as exc:  # noqa: BLE001
                results.extend(["ERROR: " + error_text(exc)] * len(items))
            seconds.append(time.perf_counter() - t)
        return {"results": results, "seconds": seconds}

    def lookup(self, req: dict) -> dict:
        stub = PermissionsServiceStub(self.peer.db.channel())
        out = []
        for subject in req["subjects"]:
            request = LookupResourcesRequest(consistency=FULL, resource_object_type=req["resource_type"],
                                             permission=req["permission"], subject=parse_subject(subject))
            t = time.perf_counter()
            ids = sorted(r.resource_object_id for r in stub.LookupResources(request))
            out.append({"ids": ids, "seconds": time.perf_counter() - t})
        return {"lookups": out}

    def writes(self, req: dict) -> dict:
        op = RelationshipUpdate.Operation.OPERATION_TOUCH
        return {"latencies_us": [self._write([r], op) * 1e6 for r in req["relationships"]]}

    def rss(self, req: dict) -> dict:
        return rss_mib()


def main() -> None:
    server = Server()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req["op"] == "quit":
            break
        try:
            answer = getattr(server, req["op"])(req)
        except Exception as exc:  # noqa: BLE001  (reported to the caller, which decides)
            answer = {"error": f"{type(exc).__name__}: {error_text(exc)}"}
        _PROTOCOL.write(json.dumps(answer) + "\n")
    server.peer.close()


if __name__ == "__main__":
    main()
