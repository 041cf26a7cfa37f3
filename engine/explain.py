"""Explanations: why a check was granted or denied.

An explained check is evaluated again, without the cache, by :class:`TracingChecker`
(the same evaluator as every check, with hooks that record what it looked at),
which builds an :class:`ExplainNode` tree. :func:`summarize` turns the tree
into the few lines a person needs:

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
from .check import LocalChecker, _All, _Any
from .dispatch import CheckRequest, Outcome, Tri
from .lineage import Edge
from .relationships import ObjectRef, Relationship

__all__ = ["ExplainNode", "Explanation", "TracingChecker", "summarize"]

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


def _path_text(path: tuple[Edge, ...], start: ObjectRef) -> str:
    text = str(start)
    for e in path:
        text += f" -{e.relation}-> {e.target}"
    return text


class TracingChecker(LocalChecker):
    """The evaluator with a recording of every step (used for explanations only; never cached)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.root = ExplainNode("root", "root")
        self._stack = [self.root]

    def _enter(self, label: str, kind: str) -> ExplainNode:
        node = ExplainNode(label, kind)
        self._stack[-1].children.append(node)
        self._stack.append(node)
        return node

    def _exit(self, node: ExplainNode, outcome: Outcome) -> Outcome:
        node.value = outcome.value
        if outcome.value is Tri.UNKNOWN and outcome.missing:
            node.note = "needs context: " + ", ".join(sorted(outcome.missing))
        if outcome.cut:
            node.note = (node.note + "; " if node.note else "") + "cycle cut"
        self._stack.pop()
        return outcome

    inline_leaves = False  # every relation is a node of the explanation

    def check(self, req: CheckRequest) -> Outcome:
        node = self._enter(f"{req.resource}#{req.name} for {req.subject}", "check")
        try:
            return self._exit(node, super().check(req))
        except BaseException:
            self._stack.pop()
            raise

    def _caveat(self, r: Relationship) -> Outcome:
        out = super()._caveat(r)
        note = ""
        if r.caveat is not None:
            note = f"caveat {r.caveat.name}: " + {Tri.TRUE: "true", Tri.FALSE: "false", Tri.UNKNOWN: "undecided"}[
                out.value]
        self._stack[-1].children.append(ExplainNode(str(r), "relationship", out.value, note=note))
        return out

    def _expr(self, req: CheckRequest, e: s.Expr, negated: bool) -> Outcome:
        if isinstance(e, s.Computed):
            return super()._expr(req, e, negated)
        kind = type(e).__name__.lower()
        label = {
            "union": "any of", "intersection": "all of", "exclusion": "but not", "nil": "nil", "self": "self",
        }.get(kind, kind)
        if isinstance(e, s.Arrow):
            label = f"{e.relation}{'.all' if e.mode is s.ArrowMode.ALL else '->'}{e.target}"
            kind = "arrow_all" if e.mode is s.ArrowMode.ALL else "arrow"
        elif isinstance(e, s.Cleared):
            label = f"cleared{f'({e.classification})' if e.classification else ''}"
        elif isinstance(e, s.Upstream):
            label = f"upstream({e.permission})"
        node = self._enter(label, kind)
        try:
            return self._exit(node, super()._expr(req, e, negated))
        except BaseException:
            self._stack.pop()
            raise

    def _cleared(self, req: CheckRequest, classification: str | None, negated: bool) -> Outcome:
        every = _All()
        provenance = self.lineage.provenance(req.resource)
        for name, values in self.lineage.requirements(req.resource, classification):
            # values[0] is the label that imposes the requirement (for a level: the highest present)
            paths = provenance.get(name, {}).get(values[0], [])
            wanted = f"`cleared` on {name}:{values[0]}"
            if len(values) > 1:
                wanted += f" or higher ({', '.join(values[1:])})"
            source = _path_text(paths[0], req.resource) if paths else str(req.resource)
            node = self._enter(f"needs {wanted}", "requirement")
            some = _Any()
            for v in values:
                some.add(self._child(req, ObjectRef(name, v), "cleared", negated))
                if some.done:
                    break
            result = self._exit(node, some.result())
            node.note = f"label from {source} (label {name}:{values[0]})"
            every.add(result)
            if every.done:
                break
        return every.result()

    def _upstream(self, req: CheckRequest, permission: str, negated: bool) -> Outcome:
        every = _All()
        for obj, path in self.lineage.upstream(req.resource):
            if self.schema.member(obj.type, permission) is None:
                continue
            node = self._enter(f"{permission} on {obj}", "upstream")
            result = self._exit(node, self._child(req, obj, permission, negated))
            node.note = "via " + _path_text(path, req.resource)
            every.add(result)
            if every.done:
                break
        return every.result()


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
