"""Run by the SpiceDB peer's Python (not Headwater's): real SpiceDB's answers to each case's checks, and its
lookups where its check disagrees with Headwater's answer.

stdin: JSON list of cases {"name", "schema", "schema_reversed", "relationships", "checks": [{resource,
permission, subject, context}], "headwater": [answer per check] or null, "headwater_schema_error": str or null}.
stdout: one JSON line per case, written as soon as it is answered (the caller may give up on a case that takes
too long and start again after it): {"load_error"?, "reversed_load_error"?, "answers": [{"result", "error"?,
"tries"}], "lookups": {check index: {"resources": answer, "subjects": answer, "without_wildcards"?: answer}}}
(``without_wildcards``: for a subject-set subject, SpiceDB's check on the case's data without its wildcard
relationships).

The oracle is SpiceDB's single CheckPermission (its bulk check can contradict it on caveated items), fully
consistent, retried on SpiceDB's own deadline; a check still unanswered after the retries is "UNANSWERED".
"""

import json
import os
import sys
import time

sys.path.insert(0, os.environ["HEADWATER_PEERS_DIR"])
from authzed.api.v1 import (  # noqa: E402
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
)
from spicedb_embed import FULL, Peer, check_request, error_text, parse_subject, result_of, to_struct  # noqa: E402

TRIES = 4
TRANSIENT = ("deadline", "DeadlineExceeded", "context canceled", "Unavailable", "resource exhausted")
NAMES = {1: "NO_PERMISSION", 2: "HAS_PERMISSION", 3: "CONDITIONAL_PERMISSION"}  # LookupPermissionship


def check(peer, c):
    last = None
    for attempt in range(TRIES):
        try:
            out = result_of(peer.perms.CheckPermission(check_request(c, FULL)))
            out["tries"] = attempt + 1
            return out
        except Exception as exc:  # noqa: BLE001 - the peer's errors arrive as one type
            last = error_text(exc)
            if not any(t in last for t in TRANSIENT):
                return {"result": "ERROR", "error": last, "tries": attempt + 1}
            time.sleep(0.05 * (attempt + 1))
    return {"result": "UNANSWERED", "error": last, "tries": TRIES}


def lookup_resources(peer, c):
    resource_type, _, resource_id = c["resource"].partition(":")
    req = LookupResourcesRequest(consistency=FULL, resource_object_type=resource_type, permission=c["permission"],
                                 subject=parse_subject(c["subject"]))
    if c.get("context") is not None:
        req.context.CopyFrom(to_struct(c["context"]))
    try:
        for r in peer.perms._stub.LookupResources(req, timeout=30):
            if r.resource_object_id == resource_id:
                return NAMES.get(r.permissionship, str(r.permissionship))
    except Exception as exc:  # noqa: BLE001
        return "ERROR " + error_text(exc)[:300]
    return "NO_PERMISSION"


def lookup_subjects(peer, c):
    resource_type, _, resource_id = c["resource"].partition(":")
    subject = parse_subject(c["subject"])
    req = LookupSubjectsRequest(consistency=FULL, resource=ObjectReference(object_type=resource_type,
                                                                           object_id=resource_id),
                                permission=c["permission"], subject_object_type=subject.object.object_type,
                                optional_subject_relation=subject.optional_relation)
    if c.get("context") is not None:
        req.context.CopyFrom(to_struct(c["context"]))
    wildcard = None
    try:
        for r in peer.perms._stub.LookupSubjects(req, timeout=30):
            s = r.subject
            if s.subject_object_id == subject.object.object_id:
                return NAMES.get(s.permissionship, str(s.permissionship))
            if s.subject_object_id == "*":
                excluded = {e.subject_object_id for e in s.excluded_subjects}
                if subject.object.object_id not in excluded:
                    wildcard = NAMES.get(s.permissionship, str(s.permissionship))
    except Exception as exc:  # noqa: BLE001
        return "ERROR " + error_text(exc)[:300]
    return wildcard or "NO_PERMISSION"


def load(peer, schema, relationships):
    peer.write_schema(schema)
    if relationships:
        peer.write_relationships(relationships)


def answer(case):
    out = {}
    with Peer() as peer:
        try:
            load(peer, case["schema"], case["relationships"])
        except Exception as exc:  # noqa: BLE001
            out["load_error"] = error_text(exc)
            return out
        if case.get("headwater_schema_error"):
            with Peer() as other:
                try:
                    load(other, case["schema_reversed"], [])
                except Exception as exc:  # noqa: BLE001
                    out["reversed_load_error"] = error_text(exc)
            return out
        answers = [check(peer, c) for c in case["checks"]]
        out["answers"] = answers
        lookups = {}
        ours = case.get("headwater") or []
        plain = [r for r in case["relationships"] if not is_wildcard(r)]
        without: dict = {}
        for i, (c, theirs, mine) in enumerate(zip(case["checks"], answers, ours)):
            if theirs["result"] == "ERROR" and "max depth" in theirs.get("error", ""):
                continue
            if mine.split(" ")[0] != theirs["result"]:
                lookups[str(i)] = {"resources": lookup_resources(peer, c), "subjects": lookup_subjects(peer, c)}
                if "#" in c["subject"] and len(plain) < len(case["relationships"]):
                    # A wildcard never stands for a subject set in Headwater, so for a subject-set subject its
                    # answer is its answer on the data without wildcards: ask SpiceDB that question too.
                    if "peer" not in without:
                        without["peer"] = Peer()
                        load(without["peer"], case["schema"], plain)
                    other = check(without["peer"], c)
                    lookups[str(i)]["without_wildcards"] = (other["result"] + " " + other.get("error", ""))[:200]
        if "peer" in without:
            without["peer"].close()
        out["lookups"] = lookups
    return out


def is_wildcard(relationship):
    """Whether the relationship's subject is a wildcard (``...@user:*``, caveats and expiration aside)."""
    subject = relationship.split("@", 1)[1].split("[", 1)[0]
    return subject.endswith(":*")


def main():
    for case in json.load(sys.stdin):
        sys.stdout.write(json.dumps(answer(case)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
