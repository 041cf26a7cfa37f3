"""CheckPermission's ``debug_trace`` (SpiceDB's ``DebugInformation``) from Headwater's explanation.

An explained check (``Engine.check(..., explain=True)``) records every step as an
:class:`~headwater.engine.explain.ExplainNode` tree. SpiceDB's trace is a tree of checks
(``CheckDebugTrace``: resource, permission, subject, result, sub-problems), so:

- a ``check`` step becomes a trace of ``resource#permission`` for the checked subject
  (``PERMISSION_TYPE_PERMISSION`` for a permission, ``PERMISSION_TYPE_RELATION`` otherwise);
- a ``relationship`` step becomes a leaf trace of the relationship itself (its subject is the
  relationship's subject), with ``caveat_evaluation_info`` when it has a caveat;
- operation steps (union, intersection, exclusion, arrows, ``cleared``, ``upstream``) are
  flattened: their checks and relationships are sub-problems of the enclosing check. A
  lineage step (a ``cleared`` requirement, an ``upstream`` ancestor) names the lineage path
  in the ``source`` of the checks under it (``headwater:lineage: label from ...``).

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.relationships import ObjectRef, SubjectRef
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n permission view = viewer\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> result = engine.check(ObjectRef("doc", "1"), "view", SubjectRef("user", "ann"), explain=True)
    >>> trace = check_trace(result.explanation.tree, engine.schema())
    >>> trace.permission, trace.result == trace.PERMISSIONSHIP_HAS_PERMISSION
    ('view', True)
    >>> trace.sub_problems.traces[0].sub_problems.traces[0].permission
    'viewer'
"""

from __future__ import annotations

from authzed.api.v1 import core_pb2, debug_pb2

from ....dsl import schema as s
from ...explain import ExplainNode
from ...outcome import Tri
from ...relationships import parse_relationship, parse_subject

__all__ = ["LINEAGE_SOURCE", "check_trace", "debug_information"]

_T = debug_pb2.CheckDebugTrace
_RESULT = {Tri.TRUE: _T.PERMISSIONSHIP_HAS_PERMISSION, Tri.FALSE: _T.PERMISSIONSHIP_NO_PERMISSION,
           Tri.UNKNOWN: _T.PERMISSIONSHIP_CONDITIONAL_PERMISSION}
_CAVEAT = {Tri.TRUE: debug_pb2.CaveatEvalInfo.RESULT_TRUE, Tri.FALSE: debug_pb2.CaveatEvalInfo.RESULT_FALSE,
           Tri.UNKNOWN: debug_pb2.CaveatEvalInfo.RESULT_MISSING_SOME_CONTEXT}

#: The prefix of the ``source`` of a check reached through a lineage step (its note: the lineage path).
LINEAGE_SOURCE = "headwater:lineage: "


def _object(type_: str, id_: str) -> core_pb2.ObjectReference:
    return core_pb2.ObjectReference(object_type=type_, object_id=id_)


def _subject(text: str) -> core_pb2.SubjectReference:
    ref = parse_subject(text)
    relation = ref.relation if ref.relation not in (None, "...") else ""
    return core_pb2.SubjectReference(object=_object(ref.type, ref.id), optional_relation=relation)


def _permission_type(schema: s.Schema, type_: str, name: str) -> int:
    member = schema.member(type_, name)
    return _T.PERMISSION_TYPE_PERMISSION if isinstance(member, s.Permission) else _T.PERMISSION_TYPE_RELATION


def _sub_problems(node: ExplainNode, schema: s.Schema, source: str) -> list[debug_pb2.CheckDebugTrace]:
    """The traces of the checks and relationships under ``node``, through its operation steps."""
    out: list[debug_pb2.CheckDebugTrace] = []
    for child in node.children:
        if child.kind in ("check", "relationship"):
            out.append(_trace(child, schema, source))
        else:
            lineage = LINEAGE_SOURCE + child.note if child.kind in ("requirement", "upstream") and child.note \
                else source
            out.extend(_sub_problems(child, schema, lineage))
    return out


def _trace(node: ExplainNode, schema: s.Schema, source: str) -> debug_pb2.CheckDebugTrace:
    if node.kind == "relationship":
        rel = parse_relationship(node.label)
        trace = _T(resource=_object(rel.resource.type, rel.resource.id), permission=rel.relation,
                   permission_type=_T.PERMISSION_TYPE_RELATION, subject=_subject(str(rel.subject)),
                   result=_RESULT[node.value], source=source or "headwater:relationship")
        if rel.caveat is not None:
            trace.caveat_evaluation_info.CopyFrom(debug_pb2.CaveatEvalInfo(
                caveat_name=rel.caveat.name, result=_CAVEAT[node.value]))
        trace.sub_problems.SetInParent()
        return trace
    asked, _, subject = node.label.rpartition(" for ")
    obj, _, name = asked.partition("#")
    type_, _, id_ = obj.partition(":")
    trace = _T(resource=_object(type_, id_), permission=name, permission_type=_permission_type(schema, type_, name),
               subject=_subject(subject), result=_RESULT[node.value], source=source or "headwater")
    trace.sub_problems.traces.extend(_sub_problems(node, schema, source))
    return trace


def check_trace(tree: ExplainNode, schema: s.Schema) -> debug_pb2.CheckDebugTrace:
    """The trace of an explained check (``tree``: its explanation's tree, a ``check`` step)."""
    return _trace(tree, schema, "")


def debug_information(tree: ExplainNode, schema: s.Schema, schema_text: str) -> debug_pb2.DebugInformation:
    """CheckPermission's ``debug_trace``: the check's trace and the schema text it ran on."""
    return debug_pb2.DebugInformation(check=check_trace(tree, schema), schema_used=schema_text)
