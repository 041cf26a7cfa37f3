"""Membership sets: the terminal subjects of an expand tree, by SpiceDB's rules (validation files use them).

Example::

    >>> from headwater.engine.expand import ExpandNode, ExpandOperation, ExpandedSubject
    >>> from headwater.engine.relationships import ObjectRef, SubjectRef
    >>> leaf = lambda *ids: ExpandNode(ObjectRef("doc", "1"), "viewer",
    ...                                subjects=tuple(ExpandedSubject(SubjectRef("user", i), None) for i in ids))
    >>> tree = ExpandNode(ObjectRef("doc", "1"), "view", ExpandOperation.EXCLUSION, (leaf("*"), leaf("bob")))
    >>> [f.validation_string() for f in found_subjects(tree)]
    ['user:* - {user:bob}']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .expand import ExpandNode, ExpandOperation
from .relationships import SubjectRef

__all__ = ["FoundSubject", "found_subjects"]


@dataclass(frozen=True, slots=True)
class FoundSubject:
    """A terminal subject of an expand tree, with the ``object#relation`` leaves it was found under."""

    subject: SubjectRef
    relations: frozenset[str] = frozenset()  # "type:id#relation" of the relationships that reach it
    caveated: bool = False
    excluded: tuple[FoundSubject, ...] = ()  # for a wildcard: the subjects it does not cover

    def validation_string(self) -> str:
        """SpiceDB's form: ``user:tom``, ``user:tom[...]`` (caveated), ``user:* - {user:a, user:b[...]}``."""
        text = str(self.subject) + ("[...]" if self.caveated else "")
        if self.subject.is_wildcard and self.excluded:
            text += " - {" + ", ".join(sorted(x.validation_string() for x in self.excluded)) + "}"
        return text

    def covers(self, subject: SubjectRef) -> bool | None:
        """Whether this found subject includes ``subject``: True, False, or None when only under a caveat."""
        if self.subject == subject:
            return None if self.caveated else True
        if not self.subject.is_wildcard or subject.relation is not None or subject.type != self.subject.type:
            return False
        exclusion = next((x for x in self.excluded if x.subject.id == subject.id), None)
        if exclusion is not None and not exclusion.caveated:
            return False
        return None if self.caveated or exclusion is not None else True


def found_subjects(node: ExpandNode) -> list[FoundSubject]:
    """The terminal subjects of an expand tree, by SpiceDB's membership-set rules (sorted by subject).

    These are the rules of SpiceDB's ``internal/developmentmembership`` (``membership.go``,
    ``trackingsubjectset.go``) over ``internal/datasets/basesubjectset.go``, which its
    validation files are checked with:

    - Subjects are grouped by ``type#relation``; each group holds concrete subjects and at
      most one wildcard (with excluded subjects). A leaf contributes each subject, found under
      the leaf's ``resource#relation``; merging two entries for one subject unions their
      relation sets (an entry built from several sources gets all their relations).
    - Union: add everything. A concrete subject and a wildcard both stay; a concrete subject
      added to a wildcard removes it from the wildcard's exclusions (unless the subject is
      caveated, then the exclusion stays, caveated). Two wildcards: caveated only if both
      are; their exclusions are intersected.
    - Intersection (first child, then each further child): groups missing on either side
      go. A concrete subject stays if it is on both sides, or if the other side has a
      wildcard not excluding it (a caveated wildcard or exclusion makes it caveated); a
      wildcard stays only when both sides have one (exclusions united). An empty intersection
      (``.all()`` over no relationships) is empty.
    - Exclusion (first child minus each further child, group by group): a subtracted
      concrete subject is removed (made caveated if the subtracted one is caveated, gaining
      its relations); subtracted from a wildcard it becomes an exclusion of the wildcard
      (``user:* - {user:banned}``). A subtracted wildcard removes every concrete subject it
      does not exclude and removes the wildcard; what the subtracted wildcard excludes and
      the first one did not becomes concrete. A caveated subtracted wildcard makes them
      caveated instead.
    - A caveat on a node (a caveated subject set or arrow hop) makes everything under it
      caveated. Caveats are only tracked as present or not (``[...]``).
    """
    return sorted(_membership(node).subjects(), key=lambda f: f.subject)


def _membership(node: ExpandNode) -> _Membership:
    if node.operation is None:
        out = _Membership()
        onr = f"{node.resource}#{node.name}"
        for x in node.subjects:
            out.add(FoundSubject(x.subject, frozenset((onr,)), x.caveated))
    elif node.operation is ExpandOperation.UNION:
        out = _Membership()
        for child in node.children:
            out.add_all(_membership(child))
    elif not node.children:
        out = _Membership()
    elif node.operation is ExpandOperation.INTERSECTION:
        out = _membership(node.children[0])
        for child in node.children[1:]:
            out = out.intersect(_membership(child))
    else:
        out = _membership(node.children[0])
        for child in node.children[1:]:
            out = out.exclude(_membership(child))
    return out.under_caveat() if node.caveated else out


class _Membership:
    """Found subjects grouped by ``(type, relation)`` (SpiceDB's TrackingSubjectSet)."""

    def __init__(self, groups: dict[tuple[str, str | None], _Group] | None = None) -> None:
        self.groups = groups if groups is not None else {}

    def _group(self, key: tuple[str, str | None]) -> _Group:
        if key not in self.groups:
            self.groups[key] = _Group(key)
        return self.groups[key]

    def add(self, fs: FoundSubject) -> None:
        self._group((fs.subject.type, fs.subject.relation)).add(fs)

    def add_all(self, other: _Membership) -> None:
        for key, group in other.groups.items():
            for fs in group.as_list():
                self._group(key).add(fs)

    def intersect(self, other: _Membership) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            if key in other.groups:
                out[key] = group.clone()
                out[key].intersect(other.groups[key])
        return _Membership(out)

    def exclude(self, other: _Membership) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            out[key] = group.clone()
            if key in other.groups:
                for fs in other.groups[key].as_list():
                    out[key].subtract(fs)
        return _Membership(out)

    def under_caveat(self) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            out[key] = _Group(key)
            out[key].concrete = {i: group.make(i, True, (), c) for i, c in group.concrete.items()}
            if group.wildcard is not None:
                out[key].wildcard = group.make("*", True, group.wildcard.excluded, group.wildcard)
        return _Membership(out)

    def subjects(self) -> list[FoundSubject]:
        return [fs for group in self.groups.values() for fs in group.as_list()]


class _Group:
    """The subjects of one ``type#relation``: concrete ones by id, and at most one wildcard (BaseSubjectSet).

    Caveats are booleans here, which is exact for the rules, as they only ever ask whether
    an expression is present: ``and``/``or`` are caveated when either side is; SpiceDB's
    short-circuited ``or`` is caveated only when both are; ``not`` keeps it.
    """

    def __init__(self, key: tuple[str, str | None]) -> None:
        self.key = key
        self.concrete: dict[str, FoundSubject] = {}
        self.wildcard: FoundSubject | None = None

    def make(self, subject_id: str, caveated: bool, excluded: Iterable[FoundSubject],
             *sources: FoundSubject | None) -> FoundSubject:
        relations = frozenset().union(*(src.relations for src in sources if src is not None))
        return FoundSubject(SubjectRef(self.key[0], subject_id, self.key[1]), relations, caveated, tuple(excluded))

    def clone(self) -> _Group:
        out = _Group(self.key)
        out.concrete = dict(self.concrete)
        out.wildcard = self.wildcard
        return out

    def as_list(self) -> list[FoundSubject]:
        return list(self.concrete.values()) + ([self.wildcard] if self.wildcard is not None else [])

    def _set_concrete(self, subject_id: str, fs: FoundSubject | None) -> None:
        if fs is None:
            self.concrete.pop(subject_id, None)
        else:
            self.concrete[subject_id] = fs

    # ------------------------------------------------------------ union

    def add(self, fs: FoundSubject) -> None:
        if fs.subject.is_wildcard:
            wildcard = self._union_wildcards(self.wildcard, fs)
            for concrete in self.concrete.values():
                wildcard = self._union_wildcard_concrete(wildcard, concrete)
            self.wildcard = wildcard
            return
        self._set_concrete(fs.subject.id, self._union_concretes(self.concrete.get(fs.subject.id), fs))
        self.wildcard = self._union_wildcard_concrete(self.wildcard, fs)

    def _union_wildcards(self, existing: FoundSubject | None, adding: FoundSubject) -> FoundSubject:
        if existing is None:
            return adding
        # Exclusions are intersected: what one wildcard excludes, the other may include.
        mine, theirs = _Group(self.key), _Group(self.key)
        for x in existing.excluded:
            mine.add(x)
        for x in adding.excluded:
            theirs.add(x)
        mine.intersect(theirs)
        return self.make("*", existing.caveated and adding.caveated, mine.as_list(), existing, adding)

    def _union_wildcard_concrete(self, wildcard: FoundSubject | None, adding: FoundSubject) -> FoundSubject | None:
        if wildcard is None:
            return None
        excluded = []
        for x in wildcard.excluded:
            if x.subject.id != adding.subject.id:
                excluded.append(x)
            elif adding.caveated:  # still excluded when the added subject's caveat is false
                excluded.append(self.make(adding.subject.id, True, (), x, adding))
        return self.make("*", wildcard.caveated, excluded, wildcard)

    def _union_concretes(self, existing: FoundSubject | None, adding: FoundSubject | None) -> FoundSubject | None:
        if existing is None:
            return adding
        if adding is None:
            return existing
        return self.make(existing.subject.id, existing.caveated and adding.caveated, (), existing, adding)

    # ------------------------------------------------------------ exclusion

    def subtract(self, removing: FoundSubject) -> None:
        if removing.subject.is_wildcard:
            for concrete in list(self.concrete.values()):
                self._set_concrete(concrete.subject.id, self._subtract_wildcard_from_concrete(concrete, removing))
            self.wildcard, concretes = self._subtract_wildcards(self.wildcard, removing)
            for concrete in concretes:
                self._set_concrete(concrete.subject.id, concrete)
            return
        existing = self.concrete.get(removing.subject.id)
        if existing is not None:
            remaining = (self.make(existing.subject.id, True, (), existing, removing) if removing.caveated
                         else None)
            self._set_concrete(removing.subject.id, remaining)
        if self.wildcard is not None:
            self.wildcard = self._exclude_from_wildcard(self.wildcard, removing)

    def _subtract_wildcards(self, existing: FoundSubject | None,
                            removing: FoundSubject) -> tuple[FoundSubject | None, list[FoundSubject]]:
        if existing is None:
            return None, []
        if not removing.caveated and not removing.excluded:
            return None, []  # {*} - {*} = {}
        # What the removed wildcard excludes (and this one did not, for sure) stays, as concrete subjects.
        mine = {x.subject.id: x for x in existing.excluded}
        concretes = []
        for x in removing.excluded:
            prior = mine.get(x.subject.id)
            if prior is None or prior.caveated:
                caveated = existing.caveated or removing.caveated or x.caveated or prior is not None
                concretes.append(self.make(x.subject.id, caveated, (), x))
        if existing.caveated or removing.caveated:
            return self.make("*", True, existing.excluded, existing, removing), concretes
        return None, concretes

    def _subtract_wildcard_from_concrete(self, concrete: FoundSubject, wildcard: FoundSubject) -> FoundSubject | None:
        exclusion = next((x for x in wildcard.excluded if x.subject.id == concrete.subject.id), None)
        if exclusion is None:
            if not wildcard.caveated:
                return None
            return self.make(concrete.subject.id, True, (), concrete)
        if not exclusion.caveated:
            return concrete
        return self.make(concrete.subject.id, True, (), concrete)

    def _exclude_from_wildcard(self, wildcard: FoundSubject, removing: FoundSubject) -> FoundSubject:
        excluded, found = [], False
        for x in wildcard.excluded:
            if x.subject.id == removing.subject.id:
                excluded.append(self.make(removing.subject.id, x.caveated and removing.caveated, (), x, removing))
                found = True
            else:
                excluded.append(x)
        if not found:
            excluded.append(removing)
        return self.make("*", wildcard.caveated, excluded, wildcard)

    # ------------------------------------------------------------ intersection

    def intersect(self, other: _Group) -> None:
        mine, theirs = self.wildcard, other.wildcard
        self.wildcard = None
        if mine is not None and theirs is not None:
            excluded = _Group(self.key)
            for x in (*mine.excluded, *theirs.excluded):
                excluded.add(x)
            self.wildcard = self.make("*", mine.caveated or theirs.caveated, excluded.as_list(), mine, theirs)
        updated: dict[str, FoundSubject] = {}
        for concrete in self.concrete.values():
            other_concrete = other.concrete.get(concrete.subject.id)
            both = (self.make(concrete.subject.id, concrete.caveated or other_concrete.caveated, (), concrete,
                              other_concrete) if other_concrete is not None else None)
            result = self._union_concretes(both, self._intersect_with_wildcard(concrete, theirs))
            if result is not None:
                updated[concrete.subject.id] = result
        if mine is not None:
            for other_concrete in other.concrete.values():
                via_mine = self._intersect_with_wildcard(other_concrete, mine)
                result = self._union_concretes(updated.get(other_concrete.subject.id), via_mine)
                if result is not None:
                    updated[other_concrete.subject.id] = result
        self.concrete = updated

    def _intersect_with_wildcard(self, concrete: FoundSubject, wildcard: FoundSubject | None) -> FoundSubject | None:
        if wildcard is None:
            return None
        exclusion = next((x for x in wildcard.excluded if x.subject.id == concrete.subject.id), None)
        if exclusion is None:
            if not wildcard.caveated:
                return concrete
            return self.make(concrete.subject.id, True, (), concrete, wildcard)
        if not exclusion.caveated:
            return None
        return self.make(concrete.subject.id, True, (), concrete, wildcard, exclusion)
