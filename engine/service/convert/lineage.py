"""Conversion of the lineage messages: effective labels, lineage walks and derivations.

See :mod:`headwater.engine.service.convert` for the rules they all follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...relationships import ObjectRef, Relationship, SubjectRef
from ...results import (
    ClassificationLabel,
    Declassification,
    DeriveResult,
    EffectiveLabels,
    LabelValue,
    LineageItem,
    LineagePage,
)
from ..pb import lineage_pb2
from .core import (
    context_to_proto,
    object_from_proto,
    object_to_proto,
    relationship_to_proto,
    subject_from_proto,
    subject_to_proto,
)
from .permissions import check_response_from_proto, check_response_to_proto

__all__ = [
    "derive_check_from_proto",
    "derive_from_proto",
    "derive_request_to_proto",
    "derive_to_proto",
    "labels_from_proto",
    "labels_to_proto",
    "lineage_from_proto",
    "lineage_page_from_proto",
    "lineage_page_to_proto",
]

# ------------------------------------------------------------------ lineage


def _classifications_to_proto(labels: EffectiveLabels) -> list[lineage_pb2.ClassificationLabel]:
    return [lineage_pb2.ClassificationLabel(
        classification=c.classification, level=c.level or "", categories=list(c.categories),
        values=[lineage_pb2.LabelValue(value=v.value, paths=list(v.paths)) for v in c.values],
        declassified=[lineage_pb2.Declassification(value=d.value, actor=d.actor or "", reason=d.reason or "",
                                                   revision_token=d.token or "") for d in c.declassified])
        for c in labels.classifications]


def _classifications_from_proto(msgs: Iterable[lineage_pb2.ClassificationLabel]) -> tuple[ClassificationLabel, ...]:
    return tuple(ClassificationLabel(c.classification, c.level or None, tuple(c.categories),
                                     tuple(LabelValue(v.value, tuple(v.paths)) for v in c.values),
                                     tuple(Declassification(d.value, d.actor or None, d.reason or None,
                                                            d.revision_token or None) for d in c.declassified))
                 for c in msgs)


def labels_to_proto(labels: EffectiveLabels) -> lineage_pb2.EffectiveLabelsResponse:
    return lineage_pb2.EffectiveLabelsResponse(object=object_to_proto(labels.object), revision_token=labels.token,
                                               classifications=_classifications_to_proto(labels))


def labels_from_proto(msg: lineage_pb2.EffectiveLabelsResponse) -> EffectiveLabels:
    return EffectiveLabels(object_from_proto(msg.object), _classifications_from_proto(msg.classifications),
                           msg.revision_token)


# ------------------------------------------------------------------ derivations


def lineage_from_proto(entries: Iterable[lineage_pb2.DeriveLineage]) -> dict[str, list[ObjectRef]]:
    """Server side: a derivation's lineage entries as Engine.derive takes them (lineage relation -> objects); a
    relation given twice keeps the objects of both. The engine checks the relations against the schema."""
    lineage: dict[str, list[ObjectRef]] = {}
    for entry in entries:
        lineage.setdefault(entry.relation, []).extend(object_from_proto(o, f"lineage `{entry.relation}` object")
                                                      for o in entry.sources)
    return lineage


def derive_check_from_proto(msg: lineage_pb2.DeriveCheck) -> tuple[str, SubjectRef]:
    return msg.permission, subject_from_proto(msg.subject, "check subject")


def derive_request_to_proto(obj: ObjectRef, lineage: Mapping[str, Sequence[ObjectRef]],
                            relationships: Sequence[Relationship], checks: Sequence[tuple[str, SubjectRef]],
                            context: Mapping[str, Any] | None, actor: str | None,
                            reason: str | None) -> lineage_pb2.DeriveRequest:
    """Client side: the request of Derive."""
    return lineage_pb2.DeriveRequest(
        object=object_to_proto(obj),
        lineage=[lineage_pb2.DeriveLineage(relation=relation, sources=[object_to_proto(o) for o in sources])
                 for relation, sources in lineage.items()],
        relationships=[relationship_to_proto(r) for r in relationships],
        checks=[lineage_pb2.DeriveCheck(permission=p, subject=subject_to_proto(s)) for p, s in checks],
        context=context_to_proto(context), actor=actor or "", reason=reason or "")


def derive_to_proto(result: DeriveResult) -> lineage_pb2.DeriveResponse:
    return lineage_pb2.DeriveResponse(
        revision_token=result.token, written=result.written, object=object_to_proto(result.labels.object),
        classifications=_classifications_to_proto(result.labels),
        decisions=[check_response_to_proto(d) for d in result.decisions])


def derive_from_proto(msg: lineage_pb2.DeriveResponse) -> DeriveResult:
    labels = EffectiveLabels(object_from_proto(msg.object), _classifications_from_proto(msg.classifications),
                             msg.revision_token)
    return DeriveResult(msg.revision_token, msg.written, labels,
                        tuple(check_response_from_proto(d) for d in msg.decisions))


def lineage_page_to_proto(page: LineagePage) -> lineage_pb2.LineageWalkResponse:
    return lineage_pb2.LineageWalkResponse(
        items=[lineage_pb2.LineageItem(object=object_to_proto(i.object), depth=i.depth, path=i.path)
               for i in page.items], next_cursor=page.cursor or "", revision_token=page.token)


def lineage_page_from_proto(msg: lineage_pb2.LineageWalkResponse) -> LineagePage:
    return LineagePage([LineageItem(object_from_proto(i.object), i.depth, i.path) for i in msg.items],
                       msg.next_cursor or None, msg.revision_token)

