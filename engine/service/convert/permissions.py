"""Conversion of the permission messages: permissionships, bulk-check items and results, explanations, expand trees.

See :mod:`headwater.engine.service.convert` for the rules they all follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...errors import InvalidRequestError
from ...expand import ExpandedSubject, ExpandNode, ExpandOperation
from ...explain import ExplainNode, Explanation
from ...outcome import Tri
from ...relationships import ObjectRef, SubjectRef
from ...results import (
    BulkCheckItem,
    BulkCheckResult,
    CheckResult,
    Permissionship,
)
from ..pb import core_pb2, permission_pb2
from .core import (
    context_from_proto,
    context_to_proto,
    object_from_proto,
    object_to_proto,
    relationship_from_proto,
    relationship_to_proto,
    subject_from_proto,
    subject_to_proto,
)

__all__ = [
    "bulk_results_from_proto",
    "check_item_from_proto",
    "check_item_to_proto",
    "check_response_from_proto",
    "check_response_to_proto",
    "check_result_from_proto",
    "expand_from_proto",
    "expand_to_proto",
    "explanation_from_proto",
    "explanation_to_proto",
    "permissionship_from_proto",
    "permissionship_to_proto",
]

# ------------------------------------------------------------------ checks


_PERMISSIONSHIP = {Permissionship.NO_PERMISSION: core_pb2.PERMISSIONSHIP_NO_PERMISSION,
                   Permissionship.HAS_PERMISSION: core_pb2.PERMISSIONSHIP_HAS_PERMISSION,
                   Permissionship.CONDITIONAL_PERMISSION: core_pb2.PERMISSIONSHIP_CONDITIONAL_PERMISSION}
_PERMISSIONSHIP_BACK = {v: k for k, v in _PERMISSIONSHIP.items()}


def permissionship_to_proto(p: Permissionship) -> int:
    return _PERMISSIONSHIP[p]


def permissionship_from_proto(value: int) -> Permissionship:
    return _PERMISSIONSHIP_BACK[value]


def check_item_from_proto(msg: permission_pb2.CheckBulkRequestItem) -> BulkCheckItem:
    return BulkCheckItem(object_from_proto(msg.resource, "resource"), msg.permission,
                         subject_from_proto(msg.subject), context_from_proto(msg.context, msg.HasField("context")))


def check_item_to_proto(item: BulkCheckItem) -> permission_pb2.CheckBulkRequestItem:
    resource = item.resource if isinstance(item.resource, ObjectRef) else _parse_object(item.resource)
    subject = item.subject if isinstance(item.subject, SubjectRef) else _parse_subject(item.subject)
    return permission_pb2.CheckBulkRequestItem(resource=object_to_proto(resource), permission=item.permission,
                                               subject=subject_to_proto(subject),
                                               context=context_to_proto(item.context))


def _parse_object(text: str) -> ObjectRef:
    from ...relationships import parse_object

    return parse_object(text)


def _parse_subject(text: str) -> SubjectRef:
    from ...relationships import parse_subject

    return parse_subject(text)


_OUTCOME = {Tri.TRUE: permission_pb2.ExplainStep.OUTCOME_TRUE, Tri.FALSE: permission_pb2.ExplainStep.OUTCOME_FALSE,
            Tri.UNKNOWN: permission_pb2.ExplainStep.OUTCOME_CONDITIONAL}
_OUTCOME_BACK = {v: k for k, v in _OUTCOME.items()}


def explanation_to_proto(e: Explanation) -> permission_pb2.Explanation:
    """The explanation with its tree flattened in pre-order (iteratively: trees can be deep)."""
    msg = permission_pb2.Explanation(summary=list(e.summary))
    stack: list[tuple[ExplainNode, int]] = [(e.tree, 0)]
    while stack:
        node, depth = stack.pop()
        msg.steps.add(depth=depth, label=node.label, kind=node.kind, outcome=_OUTCOME[node.value], note=node.note)
        stack.extend((c, depth + 1) for c in reversed(node.children))
    return msg


def explanation_from_proto(msg: permission_pb2.Explanation) -> Explanation:
    roots: list[ExplainNode] = []
    path: list[ExplainNode] = []
    for step in msg.steps:
        node = ExplainNode(step.label, step.kind, _OUTCOME_BACK.get(step.outcome, Tri.FALSE), [], step.note)
        del path[step.depth:]
        (path[-1].children if path else roots).append(node)
        path.append(node)
    tree = roots[0] if roots else ExplainNode("", "check")
    return Explanation(tuple(msg.summary), tree)


def check_result_from_proto(permissionship: int, missing: Iterable[str], token: str) -> CheckResult:
    return CheckResult(permissionship_from_proto(permissionship), token, tuple(missing))


def check_response_to_proto(result: CheckResult) -> permission_pb2.CheckResponse:
    """A check's answer as Check sends it (Derive's decisions too)."""
    response = permission_pb2.CheckResponse(permissionship=permissionship_to_proto(result.permissionship),
                                            missing_context=list(result.missing_context), revision_token=result.token)
    if result.explanation is not None:
        response.explanation.CopyFrom(explanation_to_proto(result.explanation))
    return response


def check_response_from_proto(msg: permission_pb2.CheckResponse) -> CheckResult:
    return CheckResult(permissionship_from_proto(msg.permissionship), msg.revision_token, tuple(msg.missing_context),
                       explanation_from_proto(msg.explanation) if msg.HasField("explanation") else None)


def bulk_results_from_proto(msg: permission_pb2.CheckBulkResponse, items: Sequence[BulkCheckItem],
                            error_for: Any) -> list[BulkCheckResult]:
    """Client side: pairs back to BulkCheckResults; ``error_for(code_name, message)`` rebuilds an item's error."""
    out = []
    for item, pair in zip(items, msg.pairs):
        if pair.WhichOneof("response") == "error":
            out.append(BulkCheckResult(item, error=error_for(pair.error.code_name, pair.error.message)))
        else:
            out.append(BulkCheckResult(item, check_result_from_proto(pair.item.permissionship,
                                                                     pair.item.missing_context, msg.revision_token)))
    return out


# ------------------------------------------------------------------ expand


_EXPAND_OP = {None: permission_pb2.ExpandNode.OPERATION_LEAF,
              ExpandOperation.UNION: permission_pb2.ExpandNode.OPERATION_UNION,
              ExpandOperation.INTERSECTION: permission_pb2.ExpandNode.OPERATION_INTERSECTION,
              ExpandOperation.EXCLUSION: permission_pb2.ExpandNode.OPERATION_EXCLUSION}
_EXPAND_OP_BACK = {v: k for k, v in _EXPAND_OP.items()}


def expand_to_proto(tree: ExpandNode, token: str) -> permission_pb2.ExpandResponse:
    """The tree flattened in pre-order, iteratively."""
    msg = permission_pb2.ExpandResponse(revision_token=token)
    stack: list[tuple[ExpandNode, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        n = msg.nodes.add(depth=depth, resource=object_to_proto(node.resource), name=node.name,
                          operation=_EXPAND_OP[node.operation], caveated=node.caveated)
        for s in node.subjects:
            es = n.subjects.add(subject=subject_to_proto(s.subject), caveated=s.caveated)
            if s.relationship is not None:
                es.relationship.CopyFrom(relationship_to_proto(s.relationship))
        stack.extend((c, depth + 1) for c in reversed(node.children))
    return msg


def expand_from_proto(msg: permission_pb2.ExpandResponse) -> ExpandNode:
    """Rebuild the ExpandNode tree (bottom-up, since nodes are frozen)."""
    nodes = list(msg.nodes)
    if not nodes:
        raise InvalidRequestError("empty expand tree")
    children: list[list[ExpandNode]] = [[] for _ in nodes]
    parent: list[int] = []
    path: list[int] = []
    for i, n in enumerate(nodes):
        del path[n.depth:]
        parent.append(path[-1] if path else -1)
        path.append(i)
    built: list[ExpandNode | None] = [None] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):
        n = nodes[i]
        subjects = tuple(ExpandedSubject(subject_from_proto(s.subject),
                                         relationship_from_proto(s.relationship) if s.HasField("relationship")
                                         else None, s.caveated) for s in n.subjects)
        node = ExpandNode(object_from_proto(n.resource), n.name, _EXPAND_OP_BACK[n.operation],
                          tuple(reversed(children[i])), subjects, n.caveated)
        built[i] = node
        if parent[i] >= 0:
            children[parent[i]].append(node)
    root = built[0]
    assert root is not None
    return root

