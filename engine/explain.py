"""Explanations: why a check was granted or denied.

An explained check runs the one evaluator (:mod:`.evaluator`) compiled with its
tracer hooks and without the caches, so every step it takes is recorded: the
:class:`Recorder` builds an :class:`ExplainNode` tree, and the decision explained
is the decision made. :func:`summarize` turns the tree into the few lines a
person needs:

- a grant names the branch and the relationships that granted it;
- a denial caused by ``cleared`` names the missing clearance and the lineage path
  that brought the offending label, e.g. ``output:o1 -produced_by-> model:risk
  -trained_on-> dataset:claims_anon -derived_from-> dataset:claims (label
  sensitivity:confidential)``;
- a denial caused by ``upstream(p)`` names the first ancestor where ``p`` fails
  and the path to it;
- other denials name the branch that failed (for a union: that no branch granted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dsl import schema as s
from .lineage import Lineage, LineageStep
from .outcome import Outcome, Tri
from .relationships import ObjectRef
from .store import Row

__all__ = ["ExplainNode", "Explanation", "Recorder", "summarize"]

_MARK = {Tri.TRUE: "✔", Tri.FALSE: "✘", Tri.UNKNOWN: "?"}


@dataclass
class ExplainNode:
    """One step of an evaluation: what was asked, what it answered, and the steps under it."""

    label: str
    kind: str  # "check", "relationship", "union", "intersection", "exclusion", "arrow", "cleared", "requirement",
    #            "upstream", "nil", "self", "cut"
    value: Tri = Tri.FALSE
    children: list[ExplainNode] = field(default_factory=list)
    note: str = ""

    def render(self, indent: str = "") -> list[str]:
        """The tree as indented text, one step per line."""
        line = f"{indent}{_MARK[self.value]} {self.label}" + (f"  ({self.note})" if self.note else "")
        out = [line]
        for c in self.children:
            out.extend(c.render(indent + "    "))
        return out


@dataclass(frozen=True)
class Explanation:
    """Why a check came out as it did: a short summary and the full evaluation tree."""

    summary: tuple[str, ...]
    tree: ExplainNode

    def render(self) -> str:
        return "\n".join(self.summary) + "\n\n" + "\n".join(self.tree.render())


def _path_text(path: tuple[LineageStep, ...], start: ObjectRef) -> str:
    text = str(start)
    for e in path:
        text += f" -{e.relation}-> {e.target}"
    return text


class Recorder:
    """Records the steps of a traced evaluation as an :class:`ExplainNode` tree (the evaluator's ``Tracer``).

    ``root.children[0]`` is the top-level check once the evaluation returns. Requirement
    (``cleared``) and upstream steps carry the lineage path that brought them.
    """

    def __init__(self, subject: str, lineage: Lineage) -> None:
        self.subject = subject  # as text, for the label of every check step
        self.lineage = lineage
        self.root = ExplainNode("root", "root")
        self._stack = [self.root]
        self._notes: list[str | None] = [None]  # a note that replaces the step's own once it exits

    def _enter(self, label: str, kind: str, note: str | None = None) -> None:
        node = ExplainNode(label, kind)
        self._stack[-1].children.append(node)
        self._stack.append(node)
        self._notes.append(note)

    def enter_check(self, resource_type: str, resource_id: str, name: str) -> None:
        self._enter(f"{resource_type}:{resource_id}#{name} for {self.subject}", "check")

    def enter_expression(self, expr: s.Expr) -> None:
        kind = type(expr).__name__.lower()
        label = _EXPRESSION_LABELS.get(kind, kind)
        if isinstance(expr, s.Arrow):
            label = f"{expr.relation}{'.all' if expr.mode is s.ArrowMode.ALL else '->'}{expr.target}"
            kind = "arrow_all" if expr.mode is s.ArrowMode.ALL else "arrow"
        elif isinstance(expr, s.Cleared):
            label = f"cleared{f'({expr.classification})' if expr.classification else ''}"
        elif isinstance(expr, s.Upstream):
            label = f"upstream({expr.permission})"
        self._enter(label, kind)

    def enter_requirement(self, resource: ObjectRef, classification: str, values: tuple[str, ...]) -> None:
        # values[0] is the label that imposes the requirement (for a level: the highest present)
        paths = self.lineage.provenance(resource).get(classification, {}).get(values[0], [])
        wanted = f"`cleared` on {classification}:{values[0]}"
        if len(values) > 1:
            wanted += f" or higher ({', '.join(values[1:])})"
        source = _path_text(paths[0], resource) if paths else str(resource)
        self._enter(f"needs {wanted}", "requirement", f"label from {source} (label {classification}:{values[0]})")

    def enter_upstream(self, resource: ObjectRef, upstream: ObjectRef, permission: str,
                       path: tuple[LineageStep, ...]) -> None:
        self._enter(f"{permission} on {upstream}", "upstream", "via " + _path_text(path, resource))

    def relationship(self, row: Row, outcome: Outcome) -> None:
        note = ""
        if row.caveat_name is not None:
            note = f"caveat {row.caveat_name}: " + (f"error: {outcome.error}" if outcome.error is not None
                                                    else _VERDICTS[outcome.value])
        self._stack[-1].children.append(ExplainNode(str(row.relationship()), "relationship", outcome.value,
                                                    note=note))

    def exit(self, outcome: Outcome) -> Outcome:
        node = self._stack.pop()
        replacement = self._notes.pop()
        node.value = outcome.value
        if outcome.value is Tri.UNKNOWN and outcome.missing:
            node.note = "needs context: " + ", ".join(sorted(outcome.missing))
        if outcome.error is not None:
            node.note = f"no answer: {outcome.error}"
        elif outcome.cut:
            node.note = (node.note + "; " if node.note else "") + "cycle cut"
        if replacement is not None:
            node.note = replacement
        return outcome

    def abort(self) -> None:
        self._stack.pop()
        self._notes.pop()

    def explanation(self, value: Tri) -> Explanation:
        """The explanation of the evaluation that just returned ``value``."""
        return Explanation(summarize(self.root, value), self.root.children[0])


_EXPRESSION_LABELS = {"union": "any of", "intersection": "all of", "exclusion": "but not", "nil": "nil",
                      "self": "self"}
_VERDICTS = {Tri.TRUE: "true", Tri.FALSE: "false", Tri.UNKNOWN: "undecided"}


def summarize(tree: ExplainNode, value: Tri) -> tuple[str, ...]:
    """The few lines that say why (see the module docstring)."""
    top = tree.children[0] if tree.children else tree
    if value is Tri.TRUE:
        rels = list(dict.fromkeys(_granting_relationships(top)))
        return (f"granted: {top.label}",) + tuple(f"  by {r}" for r in rels)
    if value is Tri.UNKNOWN:
        return (f"conditional: {top.label}: " + (top.note or "a caveat needs more context"),
                "  undecided at: " + " → ".join(_path_to(top, Tri.UNKNOWN)))
    reasons = list(dict.fromkeys(_denials(top)))
    return (f"denied: {top.label}",) + tuple(f"  - {r}" for r in reasons or ["no relationship grants it"])


def _granting_relationships(node: ExplainNode) -> list[str]:
    """The relationships along the branches that made ``node`` true."""
    if node.kind == "relationship":
        return [node.label] if node.value is Tri.TRUE else []
    kids = [c for c in node.children if c.value is Tri.TRUE]
    if node.kind == "exclusion":
        kids = kids[:1]  # the base; the subtracted side granted nothing
    elif node.kind not in ("intersection", "cleared", "upstream", "arrow_all", "requirement") and kids:
        # union-like: one granting branch is enough. A relationship to a subject set or an arrow's
        # relationship grants together with the check that follows it (the membership / the target).
        first = kids[0]
        if first.kind == "relationship":
            following = node.children[node.children.index(first) + 1:node.children.index(first) + 2]
            if "#" in first.label.split("@", 1)[1] or node.kind == "arrow":
                kids = [first] + [f for f in following if f.kind == "check" and f.value is Tri.TRUE]
            else:
                kids = [first]
        else:
            kids = [first]
    out: list[str] = []
    for k in kids:
        out.extend(_granting_relationships(k))
    return out


def _path_to(node: ExplainNode, value: Tri) -> list[str]:
    steps = [node.label]
    for c in node.children:
        if c.value is value:
            return steps + _path_to(c, value)
    return steps


def _denials(node: ExplainNode) -> list[str]:
    """The specific reasons a FALSE node is false."""
    if node.kind == "requirement" and node.value is Tri.FALSE:
        who = node.label.replace("needs ", "")
        return [f"missing {who}; {node.note}"]
    if node.kind == "upstream" and node.value is Tri.FALSE:
        perm = node.label.split(" on ")[0]
        return [f"upstream `{perm}` fails first at {node.label.split(' on ', 1)[1]} ({node.note})"]
    if node.kind == "intersection" or node.kind in ("cleared", "upstream_all"):
        for c in node.children:
            if c.value is Tri.FALSE:
                return _denials(c)
    if node.kind == "exclusion":
        base = node.children[0] if node.children else None
        if base is not None and base.value is Tri.FALSE:
            return _denials(base)
        for c in node.children[1:]:
            if c.value is Tri.TRUE:
                return [f"excluded by `{c.label}`: " + ", ".join(dict.fromkeys(_granting_relationships(c)))]
    if node.kind == "check":
        # A permission's check has one expression child: explain inside it. A relation's check lists the
        # relationships it read and the subject sets it followed: nothing there granted.
        expression = [c for c in node.children if c.kind not in ("relationship", "check")]
        if expression and expression[0].value is Tri.FALSE:
            found = _denials(expression[0])
            if found:
                return found
        return [f"nothing grants {node.label}"]
    if node.kind in ("union", "arrow"):
        found: list[str] = []
        for c in node.children:
            found.extend(_denials(c))
        return found or [f"no branch of `{node.label}` grants"]
    if node.kind == "upstream" or node.kind == "cleared":
        for c in node.children:
            if c.value is Tri.FALSE:
                return _denials(c)
    return []
