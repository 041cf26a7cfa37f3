"""What the page shows of an engine: a check with its explanation tree, and a lineage graph with each object's
effective label, the paths that bring each inherited value, declassifications, and the path of a denial.

Both read the engine through its facade only, so they serve a scratch workspace and
the server's own engine (read-only) alike. A path is given as its text
(``output:o1 -produced_by-> model:risk``, the form of explanations and ``headwater
labels``) and as its steps (``{"source", "relation", "target"}``: ``source`` was
derived from ``target``), which the page highlights in the graph.

Example::

    >>> from headwater.engine.playground.rows import new_engine
    >>> engine = new_engine('''classification level {
    ...     levels low < high
    ...     cleared: user
    ... }
    ... definition user {}
    ... definition data {
    ...     relation label: level
    ...     relation viewer: user
    ...     lineage from: data
    ...     permission read = viewer & cleared
    ... }''')
    >>> _ = engine.touch("data:raw#label@level:high", "data:copy#from@data:raw", "data:copy#viewer@user:ann")
    >>> answer = check_json(engine, "data:copy", "read", "user:ann")
    >>> answer["permissionship"], answer["denial_paths"][0]["text"]
    ('NO_PERMISSION', 'data:copy -from-> data:raw')
    >>> graph = lineage_json(engine, "data:copy")
    >>> [(n["id"], n["role"], n["summary"]) for n in graph["nodes"]]
    [('data:copy', 'self', 'level: high'), ('data:raw', 'ancestor', 'level: high')]
    >>> graph["edges"]
    [{'source': 'data:copy', 'relation': 'from', 'target': 'data:raw'}]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...dsl import schema as dsl_schema
from ..api import Engine
from ..explain import ExplainNode
from ..relationships import ObjectRef, parse_object
from ..results import ClassificationLabel
from ..store import RelationshipFilter

__all__ = ["check_json", "lineage_json", "path_steps"]

_MAX_TREE_NODES = 5000
_LABEL_REASON = re.compile(r"missing (?P<wanted>.+?); label from (?P<path>.+) \(label (?P<label>[^)]+)\)$")
_UPSTREAM_REASON = re.compile(r"upstream `(?P<perm>[^`]+)` fails first at (?P<at>\S+) \(via (?P<path>.+)\)$")


def path_steps(text: str) -> list[dict[str, str]]:
    """``a -r-> b -s-> c`` as steps ``[{source: a, relation: r, target: b}, ...]`` (object ids have no spaces)."""
    tokens = text.split()
    steps = []
    for i in range(1, len(tokens) - 1, 2):
        steps.append({"source": tokens[i - 1], "relation": tokens[i][1:-2], "target": tokens[i + 1]})
    return steps


def _tree_json(node: ExplainNode, budget: list[int]) -> dict[str, Any]:
    budget[0] -= 1
    children = []
    for child in node.children:
        if budget[0] <= 0:
            children.append({"label": "… (tree cut)", "kind": "cut", "value": "unknown", "note": "", "children": []})
            break
        children.append(_tree_json(child, budget))
    return {"label": node.label, "kind": node.kind, "value": node.value.name.lower(), "note": node.note,
            "children": children}


def _denial_paths(summary: tuple[str, ...]) -> list[dict[str, Any]]:
    """The lineage paths of a denial's reasons: to the label that denies, or to the first upstream failure."""
    out = []
    for line in summary[1:]:
        reason = line.strip().removeprefix("- ")
        found = _LABEL_REASON.match(reason)
        if found:
            out.append({"kind": "label", "reason": reason, "label": found["label"], "text": found["path"],
                        "object": found["path"].split()[-1], "steps": path_steps(found["path"])})
            continue
        found = _UPSTREAM_REASON.match(reason)
        if found:
            out.append({"kind": "upstream", "reason": reason, "label": None, "text": found["path"],
                        "object": found["at"], "steps": path_steps(found["path"])})
    return out


def check_json(engine: Engine, resource: str, permission: str, subject: str,
               context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An explained check: the decision, the summary lines, the evaluation tree and the denial's lineage paths.
    Raises EngineError (an unknown permission, a bad object...) as the engine does."""
    result = engine.check(resource, permission, subject, context=context, explain=True)
    explanation = result.explanation
    summary = explanation.summary if explanation is not None else ()
    return {"permissionship": result.permissionship.name, "allowed": result.allowed,
            "missing_context": list(result.missing_context), "summary": list(summary),
            "tree": _tree_json(explanation.tree, [_MAX_TREE_NODES]) if explanation is not None else None,
            "denial_paths": [] if result.allowed else _denial_paths(summary)}


def _labels_json(labels: tuple[ClassificationLabel, ...]) -> list[dict[str, Any]]:
    return [{"classification": c.classification, "level": c.level, "categories": list(c.categories),
             "values": [{"value": v.value, "own": any(" " not in p for p in v.paths),
                         "paths": [{"text": p, "steps": path_steps(p)} for p in v.paths if " " in p]}
                        for v in c.values],
             "declassified": [{"value": d.value, "actor": d.actor, "reason": d.reason} for d in c.declassified]}
            for c in labels]


def _summary(labels: list[dict[str, Any]]) -> str:
    parts = []
    for c in labels:
        values = [v for v in [c["level"], *c["categories"]] if v]
        if c["values"]:
            parts.append(f"{c['classification']}: {' + '.join(values)}")
    return "; ".join(parts)


def _lineage_relations(schema: dsl_schema.Schema, type_: str) -> list[str]:
    definition = schema.definitions.get(type_)
    if definition is None:
        return []
    return [r.name for r in definition.relations.values() if r.kind is dsl_schema.RelationKind.LINEAGE]


def lineage_json(engine: Engine, obj: str, *, max_nodes: int = 500, permission: str | None = None,
                 subject: str | None = None, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The lineage graph around ``obj``: ``nodes`` (the object, its ancestors and descendants, each with its role,
    depth, shortest path, effective labels and their paths, declassifications) and ``edges`` (the lineage
    relationships between them); with ``permission`` and ``subject``, also the explained ``check`` whose denial
    paths the page highlights."""
    target = parse_object(obj)
    ancestors = engine.ancestors(target, limit=max_nodes)
    descendants = engine.descendants(target, limit=max_nodes)
    entries: dict[ObjectRef, tuple[str, int, str]] = {target: ("self", 0, str(target))}
    for role, page in (("ancestor", ancestors), ("descendant", descendants)):
        for item in page.items:
            entries.setdefault(item.object, (role, item.depth, item.path))
    schema = engine.schema()
    nodes, edges = [], []
    for node, (role, depth, path) in entries.items():
        labels = _labels_json(engine.effective_labels(node).classifications)
        nodes.append({"id": str(node), "type": node.type, "role": role, "depth": depth, "path": path,
                      "labels": labels, "summary": _summary(labels),
                      "declassified": [dict(d, classification=c["classification"]) for c in labels
                                       for d in c["declassified"]]})
        for relation in _lineage_relations(schema, node.type):
            rels, _ = engine.read(RelationshipFilter(resource_type=node.type, resource_id=node.id,
                                                     relation=relation))
            for rel in rels:
                upstream = ObjectRef(rel.subject.type, rel.subject.id)
                if upstream in entries:
                    edges.append({"source": str(node), "relation": relation, "target": str(upstream)})
    out: dict[str, Any] = {"object": str(target), "nodes": nodes, "edges": edges,
                           "truncated": ancestors.cursor is not None or descendants.cursor is not None}
    if permission and subject:
        out["check"] = check_json(engine, str(target), permission, subject, context)
    return out
