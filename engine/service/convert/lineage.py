"""Conversion of the lineage messages: effective labels and lineage walks.

See :mod:`headwater.engine.service.convert` for the rules they all follow.
"""

from __future__ import annotations

from ...results import (
    ClassificationLabel,
    Declassification,
    EffectiveLabels,
    LabelValue,
    LineageItem,
    LineagePage,
)
from ..pb import lineage_pb2
from .core import object_from_proto, object_to_proto

__all__ = [
    "labels_from_proto",
    "labels_to_proto",
    "lineage_page_from_proto",
    "lineage_page_to_proto",
]

# ------------------------------------------------------------------ lineage


def labels_to_proto(labels: EffectiveLabels) -> lineage_pb2.EffectiveLabelsResponse:
    return lineage_pb2.EffectiveLabelsResponse(
        object=object_to_proto(labels.object), revision_token=labels.token,
        classifications=[lineage_pb2.ClassificationLabel(
            classification=c.classification, level=c.level or "", categories=list(c.categories),
            values=[lineage_pb2.LabelValue(value=v.value, paths=list(v.paths)) for v in c.values],
            declassified=[lineage_pb2.Declassification(value=d.value, actor=d.actor or "", reason=d.reason or "",
                                                       revision_token=d.token or "") for d in c.declassified])
            for c in labels.classifications])


def labels_from_proto(msg: lineage_pb2.EffectiveLabelsResponse) -> EffectiveLabels:
    return EffectiveLabels(object_from_proto(msg.object), tuple(
        ClassificationLabel(c.classification, c.level or None, tuple(c.categories),
                            tuple(LabelValue(v.value, tuple(v.paths)) for v in c.values),
                            tuple(Declassification(d.value, d.actor or None, d.reason or None,
                                                   d.revision_token or None) for d in c.declassified))
        for c in msg.classifications), msg.revision_token)


def lineage_page_to_proto(page: LineagePage) -> lineage_pb2.LineageWalkResponse:
    return lineage_pb2.LineageWalkResponse(
        items=[lineage_pb2.LineageItem(object=object_to_proto(i.object), depth=i.depth, path=i.path)
               for i in page.items], next_cursor=page.cursor or "", revision_token=page.token)


def lineage_page_from_proto(msg: lineage_pb2.LineageWalkResponse) -> LineagePage:
    return LineagePage([LineageItem(object_from_proto(i.object), i.depth, i.path) for i in msg.items],
                       msg.next_cursor or None, msg.revision_token)

