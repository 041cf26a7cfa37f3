"""Random SpiceDB schemas, relationships that fit them, and every check over them (the random-schema
differential test, ``test_random_schemas.py``).

A case is drawn from one seed, so a failure is reproduced by its seed alone. Each
schema has ``user`` and 1 to 4 other definitions with 1 to 3 relations and 1 to 3
permissions each, over:

- allowed types: ``user``, ``user:*``, other definitions (objects, for arrows),
  subject sets ``T#relation``, wildcards of definitions that also appear as subject
  sets (``team:*`` beside ``team#member``), caveated types and wildcards
  (``user with c``, ``user:* with c``), ``with expiration``;
- permissions: unions, intersections and exclusions nested in parentheses, computed
  relations and permissions of the same definition (recursion and cycles through
  exclusions included), arrows ``r->p``, ``r.any(p)``, ``r.all(p)``, and ``nil``.

Relationships respect the types (2 or 3 objects per definition, caveats with and
without stored context, expirations past and future); the checks are the full
cross product of every object, every relation and permission of its definition,
every subject (users, objects, and every subject set the schema allows) and a
few contexts (none, full, partial).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Case", "random_case"]

CAVEATS = {
    "is_big": ("caveat is_big(amount int) {\n    amount > 10\n}", {"amount": 20}, {"amount": 3}),
    "flag_on": ("caveat flag_on(flag bool) {\n    flag\n}", {"flag": True}, {"flag": False}),
}
NAMES = ["doc", "folder", "team", "org", "repo"]
RELATION_NAMES = ["owner", "viewer", "member", "parent", "banned", "editor", "linked"]
PERMISSION_NAMES = ["view", "edit", "admin", "read", "write", "audit"]
USERS = ["u0", "u1", "u2"]


@dataclass
class Case:
    name: str
    schema: str
    relationships: list[str]
    checks: list[dict[str, Any]]
    schema_reversed: str = ""  # the same definitions in the opposite order
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Relation:
    name: str
    types: list[str]  # allowed type expressions, as written
    wild: bool = False  # may hold wildcards: then (nearly always) no subject set or arrow goes through it


@dataclass
class _Definition:
    name: str
    ids: list[str]
    relations: list[_Relation] = field(default_factory=list)
    permissions: list[tuple[str, str]] = field(default_factory=list)  # (name, expression text)

    def members(self) -> list[str]:
        return [r.name for r in self.relations] + [p for p, _ in self.permissions]


def random_case(seed: int) -> Case:
    rng = random.Random(seed)
    caveats = sorted(rng.sample(sorted(CAVEATS), rng.choice([0, 0, 1, 2])))
    expiration = rng.random() < 0.2
    defs = [_Definition(n, [f"{n[0]}{i}" for i in range(rng.choice([2, 3]))])
            for n in sorted(rng.sample(NAMES, rng.randint(1, 4)))]
    for d in defs:  # relation names first: subject sets and arrows refer to them
        for name in rng.sample(RELATION_NAMES, rng.randint(1, 3)):
            d.relations.append(_Relation(name, [], rng.random() < 0.4))
    # SpiceDB refuses a wildcard reachable through a subject set or an arrow; a few schemas (lax) break
    # that rule on purpose, to compare the refusals.
    lax = rng.random() < 0.1
    for d in defs:
        for r in d.relations:
            r.types = _allowed_types(rng, defs, caveats, expiration, r.wild, lax)
    for d in defs:
        names = rng.sample(PERMISSION_NAMES, rng.randint(1, 3))
        for name in names:
            d.permissions.append((name, ""))
        d.permissions = [(name, _expression(rng, d, defs, 0, name)) for name, _ in d.permissions]
    schema = _schema_text(defs, caveats, expiration)
    relationships = _relationships(rng, defs)
    checks = _checks(defs, caveats)
    return Case(f"seed-{seed}", schema, relationships, checks, _schema_text(defs[::-1], caveats, expiration),
                {"definitions": len(defs) + 1, "caveats": caveats, "expiration": expiration})


# --- the schema ------------------------------------------------------------------------------------------


def _allowed_types(rng: random.Random, defs: list[_Definition], caveats: list[str], expiration: bool,
                   wild: bool, lax: bool) -> list[str]:
    options = ["user", "user"] + (["user:*"] if wild or lax else [])
    for d in defs:
        options.append(d.name)
        for r in d.relations:
            if not r.wild or lax:
                options.append(f"{d.name}#{r.name}")
        if (wild or lax) and rng.random() < 0.3:
            options.append(f"{d.name}:*")  # a wildcard of a definition that may also be a subject set
    for c in caveats:
        options += [f"user with {c}"] + ([f"user:* with {c}"] if wild or lax else [])
    if expiration:
        options.append("user with expiration")
    chosen: list[str] = []
    for t in rng.sample(options, min(len(options), rng.randint(1, 3))):
        if t not in chosen and t.split(" with ")[0] not in [c.split(" with ")[0] for c in chosen]:
            chosen.append(t)
    return chosen


def _expression(rng: random.Random, d: _Definition, defs: list[_Definition], depth: int, own: str) -> str:
    if depth >= 2 or rng.random() < 0.35:
        return _leaf(rng, d, defs, own)
    op = rng.choice([" + ", " + ", " & ", " - "])
    n = 2 if op == " - " else rng.randint(2, 3)
    parts = [_expression(rng, d, defs, depth + 1, own) for _ in range(n)]
    text = op.join(parts)
    return f"({text})" if depth > 0 else text


def _leaf(rng: random.Random, d: _Definition, defs: list[_Definition], own: str) -> str:
    """A relation, a permission or an arrow. Never the permission being defined itself: SpiceDB, which
    does not memoize, evaluates such a self-reference exponentially until its depth limit (hours and
    gigabytes); cycles between permissions, and through arrows and the data, remain."""
    by_name = {x.name: x for x in defs}
    arrows = []
    for r in d.relations:
        if r.wild and rng.random() < 0.9:
            continue
        for t in r.types:
            target = by_name.get(t.split(" with ")[0])
            if target is not None:  # an object type: an arrow can walk it
                arrows.append((r.name, target))
    kind = rng.random()
    if arrows and kind < 0.35:
        rel, target = rng.choice(arrows)
        member = rng.choice(target.members())
        form = rng.choice(["->", "->", ".any", ".all"])
        return f"{rel}->{member}" if form == "->" else f"{rel}{form}({member})"
    if kind > 0.95:
        return "nil"
    # Mostly the relations and the permissions written before this one: a cycle between permissions with
    # more than one branch also makes SpiceDB branch exponentially, so only a few schemas have one.
    names = d.members()
    earlier = names[:names.index(own)] if rng.random() < 0.9 else [m for m in names if m != own]
    return rng.choice(earlier or [r.name for r in d.relations])


def _schema_text(defs: list[_Definition], caveats: list[str], expiration: bool) -> str:
    out = ["use expiration\n"] if expiration else []
    out += [CAVEATS[c][0] + "\n" for c in caveats]
    out.append("definition user {}\n")
    for d in defs:
        body = [f"    relation {r.name}: {' | '.join(r.types)}" for r in d.relations]
        body += [f"    permission {name} = {expr}" for name, expr in d.permissions]
        out.append(f"definition {d.name} {{\n" + "\n".join(body) + "\n}\n")
    return "\n".join(out)


# --- relationships and checks ----------------------------------------------------------------------------


def _stamp(delta: timedelta) -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)  # one case per seed all day
    return (today + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _relationships(rng: random.Random, defs: list[_Definition]) -> list[str]:
    by_name = {d.name: d for d in defs}
    keys: dict[str, str] = {}
    for d in defs:
        for r in d.relations:
            for _ in range(rng.randint(0, 4)):
                t = rng.choice(r.types)
                base, _, trait = t.partition(" with ")
                if base == "user":
                    subject = f"user:{rng.choice(USERS)}"
                elif base.endswith(":*"):
                    subject = base
                elif "#" in base:
                    tname, rel = base.split("#")
                    subject = f"{tname}:{rng.choice(by_name[tname].ids)}#{rel}"
                else:
                    subject = f"{base}:{rng.choice(by_name[base].ids)}"
                key = f"{d.name}:{rng.choice(d.ids)}#{r.name}@{subject}"
                suffix = ""
                if trait == "expiration":
                    suffix = f"[expiration:{_stamp(timedelta(days=rng.choice([-2, 2])))}]"
                elif trait:
                    stored = rng.choice([None, None, CAVEATS[trait][1], CAVEATS[trait][2]])
                    suffix = f"[{trait}]" if stored is None else f"[{trait}:{_json(stored)}]"
                keys.setdefault(key, key + suffix)
    return sorted(keys.values())


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _checks(defs: list[_Definition], caveats: list[str]) -> list[dict[str, Any]]:
    subjects = [f"user:{u}" for u in USERS]
    subject_sets = set()
    for d in defs:
        for r in d.relations:
            for t in r.types:
                base = t.split(" with ")[0]
                if "#" in base:
                    subject_sets.add(base)
                elif base in {x.name for x in defs}:
                    subjects += [f"{base}:{i}" for i in next(x for x in defs if x.name == base).ids[:1]]
    for base in sorted(subject_sets):
        tname, rel = base.split("#")
        ids = next(x for x in defs if x.name == tname).ids
        subjects += [f"{tname}:{i}#{rel}" for i in ids[:2]]
    subjects = list(dict.fromkeys(subjects))
    contexts: list[dict[str, Any] | None] = [None]
    if caveats:
        contexts.append({k: v for c in caveats for k, v in CAVEATS[c][1].items()})
        contexts.append({k: v for c in caveats for k, v in CAVEATS[c][2].items()})
    return [{"resource": f"{d.name}:{i}", "permission": m, "subject": s, "context": c}
            for d in defs for i in d.ids for m in d.members() for s in subjects for c in contexts]
