"""The real inputs the fuzzers start from: schemas, relationships and caveat contexts found in the repository.

Sources: ``examples/*.zed``, the broken policies of ``tests/dsl/cases/``, and SpiceDB's
files in ``tests/conformance/data/spicedb`` (``schema:`` and ``relationships:`` of every
YAML file, and ``*.zed``), plus the small built-in seeds below.
"""

from __future__ import annotations

import functools
import re

import yaml

from tests.conformance import CONFORMANCE

from .conftest import REPO

BUILTIN_SCHEMAS = (
    """use expiration

/** a caveat with every parameter kind the fuzzers use */
caveat only_if(x int, s string, l list<int>, m map<string>, t timestamp, d duration) {
    x > 1 && s.startsWith("a") && l.all(i, i > x) && m["k"] == s && t > timestamp("2020-01-01T00:00:00Z")
        && d < duration("1h")
}

classification sensitivity {
    levels public < internal < confidential
    categories pii
    cleared: user
}

definition user {}

// groups nest
definition group {
    relation member: user | group#member | user with only_if
}

definition document {
    relation parent: document
    relation owner: user
    relation viewer: user | user:* | group#member | user with expiration | user with only_if and expiration
    relation banned: user
    relation label: sensitivity
    relation steward: user
    declassify scrubbed: sensitivity by steward
    lineage derived_from: document
    permission edit = owner + nil
    permission view = ((viewer + edit) - banned) & parent.all(view) + parent->view
    permission read = view & cleared
    permission fresh = view & upstream(view)
}
""",
    "definition user {}\n",
    "definition org/user {}\ndefinition org/doc {\n    relation viewer: org/user\n    permission view = viewer\n}\n",
)

BUILTIN_RELATIONSHIPS = (
    "document:doc1#viewer@group:eng#member",
    "document:doc1#viewer@user:*",
    "document:doc1#viewer@user:tom[only_if:{\"x\":2,\"s\":\"ab\"}]",
    "document:doc1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]",
    "document:doc1#viewer@user:tom[only_if][expiration:2323-12-01T00:00:00.5+02:00]",
    "org/document:a/b|c-d=e+f_#viewer@org/user:x#...",
)


def _yaml_files() -> list:
    return sorted(CONFORMANCE.rglob("*.yaml"))


def _load(path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@functools.cache
def schemas() -> tuple[str, ...]:
    """Every schema text found (valid and deliberately broken), built-in ones first."""
    found: list[str] = list(BUILTIN_SCHEMAS)
    paths = (sorted((REPO / "examples").rglob("*.zed")) + sorted((REPO / "tests" / "dsl" / "cases").rglob("*.zed"))
             + sorted(CONFORMANCE.rglob("*.zed")))
    for path in paths:
        found.append(path.read_text(encoding="utf-8", errors="replace"))
    for path in _yaml_files():
        schema = _load(path).get("schema")
        if isinstance(schema, str):
            found.append(schema)
    return tuple(dict.fromkeys(found))


@functools.cache
def relationships() -> tuple[str, ...]:
    """Every relationship line found, built-in ones first."""
    found: list[str] = list(BUILTIN_RELATIONSHIPS)
    for path in _yaml_files():
        text = _load(path).get("relationships")
        if isinstance(text, str):
            found += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("//")]
    return tuple(dict.fromkeys(found))


_WITH = re.compile(r"\bwith\s+(\{.*\})\s*$")


@functools.cache
def contexts() -> tuple[str, ...]:
    """Caveat contexts (JSON object texts) from the conformance assertions (``... with {...}``)."""
    found: list[str] = ['{"x": 2, "s": "ab", "l": [3], "m": {"k": "ab"}, "t": "2021-01-01T00:00:00Z", "d": "1m"}']

    def walk(value: object) -> None:
        if isinstance(value, str):
            match = _WITH.search(value)
            if match:
                found.append(match.group(1))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in _yaml_files():
        walk(_load(path).get("assertions"))
    return tuple(dict.fromkeys(found))
