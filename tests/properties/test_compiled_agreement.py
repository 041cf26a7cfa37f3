"""The engine's one evaluator gives exactly the reference evaluator's outcomes.

``engine.evaluator`` (compiled closures) must mean what the tree-walking oracle
``tests/properties/oracle.py`` says; a difference is a wrong decision. Both run on the same snapshot and are compared
outcome for outcome (value, missing caveat parameters, valid-until, cut) or
error for error (type and message), on:

- random relationships over the rich fixed schema of the cache/store equivalence
  test (exclusions, intersections, ``.all()``, nested groups with cycles,
  wildcards, caveats with and without context, expiration), at the default
  depth limit and at small ones, so depth errors and cycle cuts are compared too;
- random schemas (the DSL fuzzer's) with random relationships that fit them.
"""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.dsl import compile_schema, format_schema
from headwater.dsl import schema as s
from headwater.engine import Engine
from headwater.engine import chain, keys
from headwater.engine.budget import Budget
from headwater.engine.cache import Cache
from headwater.engine.errors import EngineError
from headwater.engine.evaluator import evaluate, program
from headwater.engine.lineage import Lineage
from headwater.engine.relationships import ObjectRef, SubjectRef
from headwater.engine.store import Reader
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

from .oracle import CachingChecker, CheckRequest, LocalChecker, answer
from .schema_strategies import documents
from .test_check_equivalence import CHECKS, CONTEXTS, NOW, SCHEMA, SUBJECTS, relationships


def SharedCache(maxsize: int) -> Cache:  # noqa: N802 - the check cache, as the engine builds it
    return Cache("checks", maxsize, expiring=True)


def _reference(schema: s.Schema, reader: Reader, resource: ObjectRef, name: str, subject: SubjectRef,
               context: dict[str, Any], max_depth: int, cache: Cache | None) -> Any:
    local = LocalChecker(schema, reader, context=context, lineage=Lineage(schema, reader))
    head = CachingChecker(local.check, cache, (schema.digest, reader.revision, ""), NOW.timestamp(), {})
    local.dispatch = head.check
    return answer(head.check(CheckRequest(resource, name, subject, max_depth)))


def _compiled(schema: s.Schema, reader: Reader, resource: ObjectRef, name: str, subject: SubjectRef,
              context: dict[str, Any], max_depth: int, cache: Cache | None) -> Any:
    compiled = program(schema)
    srel = subject.relation or ""
    scope = keys.check_scope(schema.digest, reader.revision, "", subject.type, subject.id, srel)
    return evaluate(compiled, reader, resource.type, resource.id, name, subject.type, subject.id, srel,
                    max_depth=max_depth, context=context, scope=scope, lineage=Lineage(schema, reader),
                    resolve=chain.resolver(compiled.enter, memo={}, cache=cache), now=NOW.timestamp(),
                    budget=Budget())


def _outcome(run: Any, *args: Any) -> tuple[Any, ...]:
    try:
        o = run(*args)
    except EngineError as exc:
        return ("error", type(exc).__name__, str(exc))
    return (o.value, o.missing, o.valid_until, o.cut)


def _compare(engine: Engine, checks: list[tuple[ObjectRef, str, SubjectRef]], contexts: list[dict[str, Any]],
             depths: tuple[int, ...]) -> int:
    compared = 0
    schema = engine.schema()
    with engine.store.snapshot(now=NOW) as reader:
        for depth in depths:
            # with a shared cache too, asked in the same order: the two fill it with the same entries
            ref_cache, new_cache = SharedCache(10_000), SharedCache(10_000)
            for context in contexts:
                for resource, name, subject in checks:
                    for ref_c, new_c in ((None, None), (ref_cache, new_cache)):
                        want = _outcome(_reference, schema, reader, resource, name, subject, context, depth, ref_c)
                        got = _outcome(_compiled, schema, reader, resource, name, subject, context, depth, new_c)
                        assert got == want, (str(resource), name, str(subject), context, depth)
                        compared += 1
            assert set(ref_cache._young) | set(ref_cache._old) == set(new_cache._young) | set(new_cache._old)
    return compared


def _subject(text: str) -> SubjectRef:
    obj, _, relation = text.partition("#")
    t, _, i = obj.partition(":")
    return SubjectRef(t, i, relation or None)


FIXED_CHECKS = [(ObjectRef(*r.split(":")), p, _subject(u)) for r, p in CHECKS for u in [*SUBJECTS, "user:*"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(relationships(), st.booleans())
def test_compiled_matches_reference_on_the_rich_schema(rels: list[str], sqlite: bool) -> None:
    clock = lambda: NOW  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "h.db", clock=clock) if sqlite else MemoryStore(clock=clock)
        with store:
            engine = Engine(store, clock=clock)
            engine.write_schema(SCHEMA)
            if rels:
                engine.touch(*rels)
            contexts: list[dict[str, Any]] = [c or {} for c in CONTEXTS]
            assert _compare(engine, FIXED_CHECKS, contexts, (50, 2, 3, 4)) > 0


@st.composite
def schema_and_data(draw: st.DrawFn) -> tuple[str, list[str], list[tuple[ObjectRef, str, SubjectRef]]]:
    """A random valid schema, relationships that fit it, and every check over a few objects."""
    text = format_schema(draw(documents(with_comments=False)))
    schema = compile_schema(text)
    ids = ["a", "b", "c"]
    rels: set[str] = set()
    keys: set[str] = set()
    for d in schema.definitions.values():
        for rel in d.relations.values():
            for _ in range(draw(st.integers(0, 4))):
                allowed = draw(st.sampled_from(rel.allowed))
                subject = f"{allowed.type}:*" if allowed.wildcard else f"{allowed.type}:{draw(st.sampled_from(ids))}"
                if allowed.relation is not None:
                    subject += f"#{allowed.relation}"
                key = f"{d.name}:{draw(st.sampled_from(ids))}#{rel.name}@{subject}"
                if key in keys:
                    continue
                keys.add(key)
                suffix = ""
                if allowed.caveat is not None:
                    caveat = schema.caveats[allowed.caveat]
                    params = sorted(caveat.parameters)
                    given_params = draw(st.lists(st.sampled_from(params), unique=True, max_size=len(params)))
                    values = {p: _value(str(caveat.parameters[p]), draw(st.booleans())) for p in given_params}
                    suffix = f"[{allowed.caveat}:{json.dumps(values)}]" if values else f"[{allowed.caveat}]"
                elif allowed.expiration:
                    past = draw(st.booleans())
                    moment = NOW + (timedelta(hours=-1) if past else timedelta(hours=1))
                    suffix = "[expiration:" + moment.strftime("%Y-%m-%dT%H:%M:%SZ") + "]"
                rels.add(key + suffix)
    subjects = []
    for d in schema.definitions.values():
        subjects += [SubjectRef(d.name, i) for i in ids[:2]]
        subjects += [SubjectRef(d.name, "a", r) for r in list(d.relations)[:1]]
    checks = [(ObjectRef(d.name, i), m, subj) for d in schema.definitions.values() for i in ids[:2]
              for m in (*d.relations, *d.permissions) for subj in subjects]
    return text, sorted(rels), checks


def _value(cel_type: str, truthy: bool) -> Any:
    if cel_type.startswith("int"):
        return 2 if truthy else 0
    if cel_type.startswith("string"):
        return "x" if truthy else "y"
    if cel_type.startswith("bool"):
        return truthy
    if cel_type.startswith("list"):
        return [1, 2] if truthy else [0]
    return {"k": "v"} if truthy else {"j": "v"}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schema_and_data())
def test_compiled_matches_reference_on_random_schemas(case: tuple[str, list[str], list[Any]]) -> None:
    text, rels, checks = case
    clock = lambda: NOW  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock)
    engine.write_schema(text)
    if rels:
        engine.touch(*rels)
    _compare(engine, checks[:400], [{}], (50, 3))


GRAPH = """
caveat flag(on bool) {
    on
}

definition user {}

definition node {
    relation next: node | node#walk
    relation okay: user | user:* | user with flag
    relation banned: user
    permission walk = okay + next->walk
    permission neg = okay - next->neg
    permission mixed = okay + next->guarded
    permission guarded = okay - next->mixed
    permission every = okay & next.all(every)
    permission both = walk & neg - banned
}
"""
NODES = ["a", "b", "c"]


@st.composite
def graph(draw: st.DrawFn) -> list[str]:
    """Random edges over three nodes, self-loops and cycles included, some through subject sets."""
    out: dict[str, str] = {}  # by relationship key: one version each
    for _ in range(draw(st.integers(0, 9))):
        n, m = draw(st.sampled_from(NODES)), draw(st.sampled_from(NODES))
        kind = draw(st.sampled_from(["next", "next_set", "ok", "ok_wild", "ok_flag", "bad"]))
        text = {"next": f"node:{n}#next@node:{m}", "next_set": f"node:{n}#next@node:{m}#walk",
                "ok": f"node:{n}#okay@user:u", "ok_wild": f"node:{n}#okay@user:*",
                "ok_flag": f'node:{n}#okay@user:u[flag:{{"on":{draw(st.sampled_from(["true", "false"]))}}}]',
                "bad": f"node:{n}#banned@user:u"}[kind]
        out[text.split("[")[0]] = text
    return sorted(out.values())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph())
def test_compiled_matches_reference_on_cycles_through_exclusions(rels: list[str]) -> None:
    clock = lambda: NOW  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock)
    engine.write_schema(GRAPH)
    if rels:
        engine.touch(*rels)
    checks = [(ObjectRef("node", n), p, _subject(u)) for n in NODES
              for p in ("walk", "neg", "mixed", "guarded", "every", "both", "next", "okay")
              for u in ("user:u", "user:v", "user:*", "node:a#walk", "node:b")]
    _compare(engine, checks, [{}, {"on": True}], (50, 2, 4))
