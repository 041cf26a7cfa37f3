"""The verdict of every explanation is the decision of the check it explains, from the same evaluator.

An explained check runs the engine's one evaluator with its tracer hooks (no
cache): the answer it returns and the explanation's verdict come from that one
evaluation, and must equal the answer of the same check asked without
``explain`` (first computed, then from the cache), error for error. Random
schemas and data (the DSL fuzzer's), the rich fixed schema with caveats and
expiration, and graphs with cycles through exclusions.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from headwater.engine import Engine, EngineError
from headwater.engine.outcome import Tri
from headwater.engine.relationships import ObjectRef, SubjectRef
from headwater.engine.store.memory import MemoryStore

from .test_check_equivalence import CHECKS, CONTEXTS, NOW, SCHEMA, SUBJECTS, relationships
from .test_compiled_agreement import GRAPH, NODES, graph, schema_and_data

_VERDICT = {Tri.TRUE: "HAS_PERMISSION", Tri.FALSE: "NO_PERMISSION", Tri.UNKNOWN: "CONDITIONAL_PERMISSION"}
_SUMMARY = {"HAS_PERMISSION": "granted: ", "NO_PERMISSION": "denied: ", "CONDITIONAL_PERMISSION": "conditional: "}


def _answer(engine: Engine, resource: str, permission: str, subject: str, context: dict[str, Any] | None,
            explain: bool) -> Any:
    try:
        result = engine.check(resource, permission, subject, context=context, explain=explain)
    except EngineError as exc:
        return ("error", type(exc).__name__, str(exc)), None
    return (result.permissionship.name, result.missing_context), result.explanation


def _agree(engine: Engine, checks: list[tuple[str, str, str]], contexts: list[dict[str, Any] | None]) -> int:
    compared = 0
    for context in contexts:
        for resource, permission, subject in checks:
            computed, _ = _answer(engine, resource, permission, subject, context, False)
            cached, _ = _answer(engine, resource, permission, subject, context, False)
            explained, explanation = _answer(engine, resource, permission, subject, context, True)
            case = (resource, permission, subject, context)
            assert explained == computed == cached, case
            if explanation is not None:
                verdict = _VERDICT[explanation.tree.value]
                assert verdict == explained[0], case
                assert explanation.summary[0].startswith(_SUMMARY[verdict]), (case, explanation.summary)
                assert explanation.tree.label == f"{resource}#{permission} for {subject}", case
                compared += 1
    return compared


def _engine(schema: str, rels: list[str]) -> Engine:
    clock = lambda: NOW  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock)
    engine.write_schema(schema)
    if rels:
        engine.touch(*rels)
    return engine


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(schema_and_data())
def test_explanations_agree_on_random_schemas(case: tuple[str, list[str], list[Any]]) -> None:
    text, rels, checks = case
    as_text = [(str(r), p, str(s)) for r, p, s in checks[:200]]
    _agree(_engine(text, rels), as_text, [None])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(relationships())
def test_explanations_agree_on_the_rich_schema(rels: list[str]) -> None:
    checks = [(r, p, s) for r, p in CHECKS for s in SUBJECTS]
    assert _agree(_engine(SCHEMA, rels), checks, list(CONTEXTS)) > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph())
def test_explanations_agree_on_cycles_through_exclusions(rels: list[str]) -> None:
    checks = [(str(ObjectRef("node", n)), p, str(u)) for n in NODES
              for p in ("walk", "neg", "mixed", "guarded", "every", "both")
              for u in (SubjectRef("user", "u"), SubjectRef("node", "a", "walk"), SubjectRef("node", "b"))]
    _agree(_engine(GRAPH, rels), checks, [None, {"on": True}])
