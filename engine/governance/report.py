"""The compliance report: for each classification value, who is cleared, what carries it, who may view it.

Built from the public operations of an :class:`~headwater.engine.Engine` or of a server's
:class:`~headwater.client.Client` (they share the method names), all at one revision (the head, or
``at``): the schema's classifications; the ``cleared`` relationships of each value, with the members
of each userset (``team:analysts#member``) through LookupSubjects; the objects labeled with the value
and every object downstream of them (one breadth-first walk of the lineage graph), listed when their
effective label (``effective_labels``, which applies declassifications) contains the value, with the
lineage paths that bring it; for each such object, who holds its *viewing permission* now
(LookupSubjects: exact, conditional answers marked); the declassifications in force (with actor,
reason and revision) and those the audit log recorded. With ``since``, the relationship changes
after that revision (labels, clearances, lineage, declassifications) and the difference between the
report then and now. ``docs/governance.md`` is the user's guide; ``report_render.py`` writes
the CSV and HTML forms.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema(open("examples/ai-lineage/policy.zed").read())
    >>> _ = engine.touch("dataset:claims#label@sensitivity:pii", "model:risk#trained_on@dataset:claims",
    ...                  "output:o1#produced_by@model:risk", "output:o1#requester@user:alice",
    ...                  "sensitivity:pii#cleared@user:alice")
    >>> pii = build_report(engine).value("sensitivity", "pii")
    >>> [(o.object, o.own, o.paths) for o in pii.objects]  # doctest: +NORMALIZE_WHITESPACE
    [('dataset:claims', True, ()), ('model:risk', False, ('model:risk -trained_on-> dataset:claims',)),
     ('output:o1', False, ('output:o1 -produced_by-> model:risk -trained_on-> dataset:claims',))]
    >>> [(o.object, o.permission, [v.subject for v in o.viewers]) for o in pii.objects if o.object == "output:o1"]
    [('output:o1', 'view', ['user:alice'])]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...dsl.schema import RelationKind, Schema
from ..api import Engine
from ..consistency import Consistency, decode_token
from ..errors import EngineError
from ..results import Permissionship, SubjectResult
from ..store.contract import RelationshipFilter

__all__ = ["DEFAULT_PERMISSIONS", "Change", "ClearanceGrant", "Declassified", "LabeledObject", "Report",
           "ReportSource", "ValueDiff", "ValueReport", "Viewer", "build_report", "diff_reports"]

#: The viewing permission of a definition, when none is named for its type: the first of these it defines.
DEFAULT_PERMISSIONS = ("view", "read", "use")
_PAGE = 1000


class ReportSource(Protocol):
    """What the report reads: an :class:`Engine`, or a server's client (the same method names)."""

    def schema(self, consistency: Consistency | None = None) -> Schema: ...
    def read_relationships(self, filter: RelationshipFilter | None = None, *, consistency: Consistency | None = None,
                           limit: int | None = None, cursor: str | None = None) -> Any: ...
    def lookup_subjects(self, resource: str, permission: str, subject_type: str, subject_relation: str | None = None,
                        *, consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None) -> Any: ...
    def effective_labels(self, obj: str, *, consistency: Consistency | None = None) -> Any: ...
    def descendants(self, obj: str, *, max_depth: int | None = None, limit: int | None = None,
                    cursor: str | None = None, consistency: Consistency | None = None) -> Any: ...
    def watch(self, after_token: str) -> Any: ...
    def audit_query(self, *, kind: str | None = None, limit: int = 100, cursor: str | None = None,
                    max_revision: int | None = None, min_revision: int | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Viewer:
    """A subject with the permission: ``user:alice``, or a wildcard ``user:*`` (with the subjects it excludes)."""

    subject: str
    conditional: bool = False  # CONDITIONAL_PERMISSION: allowed only if the caveat holds
    missing_context: tuple[str, ...] = ()  # the caveat parameters a conditional answer needs
    excluded: tuple[str, ...] = ()  # a wildcard: the subjects it reaches whose answer differs


@dataclass(frozen=True, slots=True)
class ClearanceGrant:
    """One ``cleared`` relationship on a value: its subject (a user, or a userset such as a team's members), its
    caveat and expiration, and, for a userset, the subjects it holds now."""

    subject: str
    caveat: str | None
    expiration: str | None  # ISO 8601, UTC
    members: tuple[Viewer, ...] = ()


@dataclass(frozen=True, slots=True)
class LabeledObject:
    """An object whose effective label contains the value: its own label (``own``) and/or the lineage paths
    that bring it; who holds ``permission`` on it now (None: its definition has no viewing permission)."""

    object: str
    own: bool
    paths: tuple[str, ...]  # 'output:o1 -produced_by-> model:risk -trained_on-> dataset:claims'
    permission: str | None
    viewers: tuple[Viewer, ...]

    @property
    def inherited(self) -> bool:
        return bool(self.paths)


@dataclass(frozen=True, slots=True)
class Declassified:
    """A declassification of the value on an object: in force (``operation`` None, from the relationship), or a
    record of the audit log (``operation`` touch/create/delete, ``record`` its id)."""

    object: str
    actor: str | None
    reason: str | None
    token: str | None
    revision: int | None
    operation: str | None = None
    record: int | None = None
    time: str | None = None


@dataclass(frozen=True, slots=True)
class ValueReport:
    """Everything the report says about one classification value."""

    classification: str
    value: str
    kind: str  # "level" or "category"
    cleared: tuple[ClearanceGrant, ...]
    objects: tuple[LabeledObject, ...]  # sorted by object
    declassified: tuple[Declassified, ...]  # in force
    declassification_log: tuple[Declassified, ...]  # the audit log's records, oldest first

    def object(self, name: str) -> LabeledObject | None:
        return next((o for o in self.objects if o.object == name), None)


@dataclass(frozen=True, slots=True)
class Change:
    """A relationship change after ``since``: what it touches (label, clearance, lineage, declassification)."""

    token: str
    revision: int
    operation: str
    relationship: str
    kind: str


@dataclass(frozen=True, slots=True)
class ValueDiff:
    """How one value's report changed since the ``since`` revision."""

    classification: str
    value: str
    objects_added: tuple[str, ...]
    objects_removed: tuple[str, ...]
    viewers_added: Mapping[str, tuple[str, ...]]  # object -> subjects that may view it now and could not then
    viewers_removed: Mapping[str, tuple[str, ...]]
    cleared_added: tuple[str, ...]
    cleared_removed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.objects_added or self.objects_removed or self.viewers_added or self.viewers_removed
                    or self.cleared_added or self.cleared_removed)


@dataclass(frozen=True, slots=True)
class Report:
    """The compliance report at one revision (``token``)."""

    token: str
    revision: int
    permissions: Mapping[str, str | None]  # definition -> the viewing permission used (None: none defined)
    subject_types: tuple[str, ...]  # the subject types viewers are listed for
    values: tuple[ValueReport, ...]
    notes: tuple[str, ...] = ()
    since: str | None = None
    changes: tuple[Change, ...] = ()
    diff: tuple[ValueDiff, ...] = ()
    objects: int = field(default=0)  # distinct objects listed under some value

    def value(self, classification: str, value: str) -> ValueReport:
        return next(v for v in self.values if v.classification == classification and v.value == value)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data: stable keys, documented in docs/governance.md."""
        return {
            "token": self.token, "revision": self.revision, "since": self.since,
            "permissions": dict(self.permissions), "subject_types": list(self.subject_types),
            "notes": list(self.notes), "objects": self.objects,
            "classifications": [_value_json(v) for v in self.values],
            "changes": [{"token": c.token, "revision": c.revision, "operation": c.operation,
                         "relationship": c.relationship, "kind": c.kind} for c in self.changes],
            "diff": [{"classification": d.classification, "value": d.value, "objects_added": list(d.objects_added),
                      "objects_removed": list(d.objects_removed),
                      "viewers_added": {k: list(v) for k, v in d.viewers_added.items()},
                      "viewers_removed": {k: list(v) for k, v in d.viewers_removed.items()},
                      "cleared_added": list(d.cleared_added), "cleared_removed": list(d.cleared_removed)}
                     for d in self.diff],
        }


def _viewer_json(v: Viewer) -> dict[str, Any]:
    return {"subject": v.subject, "conditional": v.conditional, "missing_context": list(v.missing_context),
            "excluded": list(v.excluded)}


def _declassified_json(d: Declassified) -> dict[str, Any]:
    return {"object": d.object, "actor": d.actor, "reason": d.reason, "token": d.token, "revision": d.revision,
            "operation": d.operation, "record": d.record, "time": d.time}


def _value_json(v: ValueReport) -> dict[str, Any]:
    return {
        "classification": v.classification, "value": v.value, "kind": v.kind,
        "cleared": [{"subject": g.subject, "caveat": g.caveat, "expiration": g.expiration,
                     "members": [_viewer_json(m) for m in g.members]} for g in v.cleared],
        "objects": [{"object": o.object, "own": o.own, "inherited": o.inherited, "paths": list(o.paths),
                     "permission": o.permission, "viewers": [_viewer_json(x) for x in o.viewers]}
                    for o in v.objects],
        "declassified": [_declassified_json(d) for d in v.declassified],
        "declassification_log": [_declassified_json(d) for d in v.declassification_log],
    }


# --------------------------------------------------------------------------------------------- building


def build_report(source: ReportSource, *, at: str | None = None, since: str | None = None,
                 classification: str | None = None, permissions: Sequence[str] = (), viewers: bool = True) -> Report:
    """The compliance report of ``source`` at revision ``at`` (default: the newest), for every classification or
    only ``classification``; with ``since`` (a revision token), also what changed after it.

    ``permissions`` chooses each definition's viewing permission: ``TYPE=PERM`` entries name it for one type,
    plain ``PERM`` entries form the order of preference for the others (default :data:`DEFAULT_PERMISSIONS`).
    Without ``viewers``, no object's viewers are looked up (``permission`` and ``viewers`` stay empty: the
    labels, paths, clearances and declassifications only, much faster on a large store). An ``at`` revision that
    was garbage-collected raises the engine's error, saying so.
    """
    token = at or _head_token(source)
    report = _Builder(source, token, classification, permissions, viewers).build()
    if since is None:
        return report
    if decode_token(since) > report.revision:
        raise ValueError(f"--since {since} names a revision after the one reported ({report.token})")
    then = _Builder(source, since, classification, permissions, viewers).build()
    changes = tuple(_changes(source, report, since))
    return _replace(report, since=since, changes=changes, diff=diff_reports(then, report))


def _replace(report: Report, **changes: Any) -> Report:
    fields_ = {name: getattr(report, name) for name in Report.__dataclass_fields__}
    return Report(**{**fields_, **changes})


def _head_token(source: ReportSource) -> str:
    return str(source.read_relationships(RelationshipFilter(), limit=1).token)


def _pages(call: Any, **kwargs: Any) -> Iterator[Any]:
    """Every page of a cursored call."""
    cursor = None
    while True:
        page = call(limit=_PAGE, cursor=cursor, **kwargs)
        yield page
        cursor = page.cursor
        if not cursor:
            return


class _Builder:
    """One report at one revision: reads through ``source`` with ``at_exact_snapshot(token)`` each time."""

    def __init__(self, source: ReportSource, token: str, classification: str | None,
                 permissions: Sequence[str], viewers: bool = True) -> None:
        self.source, self.token = source, token
        self.revision = decode_token(token)
        self.at = Consistency.at_exact_snapshot(token)
        self.schema = source.schema(self.at)
        if classification is not None and classification not in self.schema.classifications:
            known = ", ".join(sorted(self.schema.classifications)) or "none"
            raise ValueError(f"no classification {classification!r} in the schema (it has: {known})")
        self.classifications = [c for name, c in sorted(self.schema.classifications.items())
                                if classification in (None, name)]
        self.permissions = _viewing_permissions(self.schema, permissions) if viewers else {}
        self.subject_types = _subject_types(self.schema)
        self.caller: dict[str, Any] = {"caller": "headwater report"} if isinstance(source, Engine) else {}
        self.notes: list[str] = []
        self._labels: dict[str, Any] = {}
        self._viewers: dict[str, tuple[Viewer, ...]] = {}

    def read(self, **filter_: str) -> Iterator[Any]:
        for page in _pages(self.source.read_relationships, filter=RelationshipFilter(**filter_), consistency=self.at):
            yield from page.relationships

    def build(self) -> Report:
        names = {c.name for c in self.classifications}
        labeled: dict[str, set[str]] = {}  # object -> the classifications it is labeled in
        for (type_, relation) in self._relations(RelationKind.LABEL):
            for r in self.read(resource_type=type_, relation=relation):
                if r.subject.type in names:
                    labeled.setdefault(str(r.resource), set()).add(r.subject.type)
        objects = self._downstream(sorted(labeled))
        rows: dict[tuple[str, str], list[tuple[str, bool, tuple[str, ...]]]] = {}
        for obj in objects:
            for c in self.labels(obj).classifications:
                if c.classification not in names:
                    continue
                for v in c.values:
                    inherited = tuple(p for p in v.paths if p != obj)
                    rows.setdefault((c.classification, v.value), []).append((obj, obj in v.paths, inherited))
        declassified = self._declassified(names)
        log = self._declassification_log(names)
        values = []
        listed: set[str] = set()
        for c in self.classifications:
            for value in c.values:
                entries = sorted(rows.get((c.name, value), []))
                listed.update(o for o, _, _ in entries)
                values.append(ValueReport(
                    c.name, value, "level" if value in c.levels else "category", self._cleared(c.name, value),
                    tuple(LabeledObject(o, own, paths, self.permissions.get(o.partition(":")[0]), self.viewers(o))
                          for o, own, paths in entries),
                    tuple(declassified.get((c.name, value), ())), tuple(log.get((c.name, value), ()))))
        return Report(self.token, self.revision, self.permissions, self.subject_types, tuple(values),
                      tuple(self.notes), objects=len(listed))

    def _relations(self, kind: RelationKind) -> list[tuple[str, str]]:
        return [(d.name, r.name) for d in self.schema.definitions.values() for r in d.relations.values()
                if r.kind is kind]

    def _downstream(self, roots: Iterable[str]) -> list[str]:
        """The labeled objects and every object downstream of one, each once (one breadth-first walk)."""
        seen = dict.fromkeys(roots)
        queue = list(seen)
        while queue:
            obj = queue.pop()
            for page in _pages(self.source.descendants, obj=obj, max_depth=1, consistency=self.at):
                for item in page.items:
                    child = str(item.object)
                    if child not in seen:
                        seen[child] = None
                        queue.append(child)
        return sorted(seen)

    def labels(self, obj: str) -> Any:
        if obj not in self._labels:
            self._labels[obj] = self.source.effective_labels(obj, consistency=self.at)
        return self._labels[obj]

    def viewers(self, obj: str) -> tuple[Viewer, ...]:
        """Who holds the object's viewing permission now (LookupSubjects over every subject type)."""
        if obj not in self._viewers:
            permission = self.permissions.get(obj.partition(":")[0])
            self._viewers[obj] = () if permission is None else self._lookup(obj, permission)
        return self._viewers[obj]

    def _lookup(self, obj: str, permission: str, relation: str | None = None) -> tuple[Viewer, ...]:
        out: list[Viewer] = []
        for subject_type in self.subject_types:
            for page in _pages(self.source.lookup_subjects, resource=obj, permission=permission,
                               subject_type=subject_type, subject_relation=relation, consistency=self.at,
                               **self.caller):
                out.extend(_viewer(r) for r in page.results)
        return tuple(out)

    def _cleared(self, classification: str, value: str) -> tuple[ClearanceGrant, ...]:
        grants = []
        for r in self.read(resource_type=classification, resource_id=value, relation="cleared"):
            s = r.subject
            members = self._lookup(f"{s.type}:{s.id}", s.relation) if s.relation else ()
            grants.append(ClearanceGrant(str(s), r.caveat.name if r.caveat else None,
                                         r.expiration.isoformat() if r.expiration else None, members))
        return tuple(grants)

    def _declassified(self, names: set[str]) -> dict[tuple[str, str], list[Declassified]]:
        """The declassifications in force, as the objects' effective labels give them (actor, reason, token)."""
        out: dict[tuple[str, str], list[Declassified]] = {}
        objects = sorted({str(r.resource) for type_, relation in self._relations(RelationKind.DECLASSIFY)
                          for r in self.read(resource_type=type_, relation=relation)})
        for obj in objects:
            for c in self.labels(obj).classifications:
                if c.classification in names:
                    for d in c.declassified:
                        out.setdefault((c.classification, d.value), []).append(Declassified(
                            obj, d.actor, d.reason, d.token, decode_token(d.token) if d.token else None))
        return out

    def _declassification_log(self, names: set[str]) -> dict[tuple[str, str], list[Declassified]]:
        """The audit log's declassification records up to this revision (a note when there is no log)."""
        out: dict[tuple[str, str], list[Declassified]] = {}
        try:
            for page in _pages(self.source.audit_query, kind="declassification", max_revision=self.revision):
                for rec in page.records:
                    if rec.get("classification") in names:
                        out.setdefault((rec["classification"], rec["value"]), []).append(Declassified(
                            rec.get("resource"), rec.get("actor"), rec.get("reason"), rec.get("token"),
                            rec.get("revision"), rec.get("operation"), rec.id,
                            rec.time.isoformat().replace("+00:00", "Z")))
        except EngineError as exc:
            self.notes.append(f"declassification history unavailable (no audit log to read): {exc}")
        return out


def _viewer(r: SubjectResult) -> Viewer:
    return Viewer(str(r.subject), r.permissionship is Permissionship.CONDITIONAL_PERMISSION,
                  tuple(r.missing_context), tuple(str(s) for s in r.excluded))


def _viewing_permissions(schema: Schema, given: Sequence[str]) -> dict[str, str | None]:
    """Each definition's viewing permission: ``TYPE=PERM`` if given, else the first of the preferred names it
    defines (plain ``PERM`` entries, else DEFAULT_PERMISSIONS); None when it defines none of them."""
    named = dict(p.split("=", 1) for p in given if "=" in p)
    preferred = [p for p in given if "=" not in p] or list(DEFAULT_PERMISSIONS)
    for type_, permission in named.items():
        d = schema.definition(type_)
        if d is None or d.member(permission) is None:
            raise ValueError(f"--permission {type_}={permission}: {type_} has no permission or relation {permission}")
    out: dict[str, str | None] = {}
    for d in schema.definitions.values():
        if d.name in schema.classifications:
            continue
        out[d.name] = named.get(d.name) or next((p for p in preferred if p in d.permissions), None)
    return out


def _subject_types(schema: Schema) -> tuple[str, ...]:
    """The types that relations name as subjects themselves (not through a userset): whom viewers are."""
    types = {t.type for d in schema.definitions.values() for r in d.relations.values()
             if r.kind is RelationKind.RELATION for t in r.allowed if t.relation is None}
    return tuple(sorted(types))


# --------------------------------------------------------------------------------------------- since


def _changes(source: ReportSource, report: Report, since: str) -> Iterator[Change]:
    """The relationship changes after ``since`` up to the report's revision that a report depends on: labels,
    clearances, lineage, declassifications, and the other relationships of the objects it lists (``access``)."""
    schema = source.schema(Consistency.at_exact_snapshot(report.token))
    kinds = {(d.name, r.name): r.kind for d in schema.definitions.values() for r in d.relations.values()}
    listed = {o.object for v in report.values for o in v.objects}
    for event in source.watch(since):
        revision = decode_token(event.token)
        if revision > report.revision:
            break
        rel = event.relationship
        kind = kinds.get((rel.resource.type, rel.relation))
        if rel.resource.type in schema.classifications and rel.relation == "cleared":
            name = "clearance"
        elif kind in (RelationKind.LABEL, RelationKind.LINEAGE, RelationKind.DECLASSIFY):
            name = "declassification" if kind is RelationKind.DECLASSIFY else kind.value
        elif str(rel.resource) in listed:
            name = "access"  # an ordinary relationship of an object the report lists (a requester, a viewer...)
        else:
            continue
        yield Change(event.token, revision, event.operation.name.lower(), str(rel), name)


def _subjects(viewers: Iterable[Viewer]) -> set[str]:
    return {v.subject + (" (conditional)" if v.conditional else "") for v in viewers}


def diff_reports(then: Report, now: Report) -> tuple[ValueDiff, ...]:
    """What changed from ``then`` to ``now``, value by value (values with no change left out)."""
    old = {(v.classification, v.value): v for v in then.values}
    out = []
    for v in now.values:
        before = old.get((v.classification, v.value))
        objs_then = {o.object: o for o in before.objects} if before else {}
        objs_now = {o.object: o for o in v.objects}
        added, removed = {}, {}
        for name in sorted(objs_then.keys() & objs_now.keys()):
            a, b = _subjects(objs_then[name].viewers), _subjects(objs_now[name].viewers)
            if b - a:
                added[name] = tuple(sorted(b - a))
            if a - b:
                removed[name] = tuple(sorted(a - b))
        cleared_then = {g.subject for g in before.cleared} if before else set()
        cleared_now = {g.subject for g in v.cleared}
        d = ValueDiff(v.classification, v.value, tuple(sorted(objs_now.keys() - objs_then.keys())),
                      tuple(sorted(objs_then.keys() - objs_now.keys())), added, removed,
                      tuple(sorted(cleared_now - cleared_then)), tuple(sorted(cleared_then - cleared_now)))
        if not d.empty:
            out.append(d)
    return tuple(out)
