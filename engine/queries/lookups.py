"""LookupResources and LookupSubjects: candidates from the relationships, then a check of each.

The candidate walks (:mod:`..lookup`) give a superset of the answer; each
candidate is then checked by the one evaluator at the same snapshot, sharing one
memo, so a lookup can never disagree with Check. Answers are sorted by id and
paged with cursors pinned to the first page's revision (:mod:`..paging`); the
candidates of a listing are kept for its next pages. Each call is one audit
record when the log records lookups.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> repos = Engine(MemoryStore())
    >>> _ = repos.write_schema("definition user {}\\ndefinition repo {\\n relation admin: user\\n"
    ...                        " relation writer: user\\n permission push = admin + writer\\n}")
    >>> _ = repos.touch("repo:web#writer@user:joe", "repo:api#admin@user:joe", "repo:ops#writer@user:sam")
    >>> [r.resource_id for r in repos.lookup_resources("repo", "push", "user:joe").results]
    ['api', 'web']
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Mapping
from typing import Any

from ...dsl import schema as dsl_schema
from .. import keys
from ..consistency import Consistency, encode_token
from ..context import Context
from ..contexts import validate_context
from ..errors import InvalidRequestError, UnknownPermissionError
from ..lookup import FRESH_ID, candidate_resources, candidate_subjects
from ..paging import Place, validate_limit
from ..relationships import ObjectRef, SubjectRef, parse_object, parse_subject
from ..results import (
    BulkCheckItem,
    CheckResult,
    LookupResourcesPage,
    LookupResult,
    LookupSubjectsPage,
    Permissionship,
    SubjectResult,
)
from .check import CheckQuery

__all__ = ["LookupQuery"]


class LookupQuery:
    """Both lookups over one engine's :class:`~..context.Context`, deciding with its :class:`CheckQuery`."""

    def __init__(self, ctx: Context, checks: CheckQuery) -> None:
        self.ctx = ctx
        self.checks = checks

    def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef | str, *,
                         context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                         limit: int | None = None, cursor: str | None = None,
                         caller: str | None = None) -> LookupResourcesPage:
        """See :meth:`~headwater.engine.Engine.lookup_resources`."""
        start = time.perf_counter_ns()
        subj = subject if isinstance(subject, SubjectRef) else parse_subject(subject)
        validate_context(context)
        query = json.dumps(["LR", resource_type, permission, str(subj), dict(context or {})], sort_keys=True,
                           default=str)
        validate_limit(limit)
        place = Place.start(query, cursor, consistency)
        with self.ctx.snapshot(place.consistency) as (reader, schema):
            _validate_member(schema, resource_type, permission)
            if subj.is_wildcard:
                raise InvalidRequestError(f"cannot look up resources for a wildcard subject ({subj})")
            # The candidate walk of one listing is kept for its next pages (same query, same revision).
            listings = self.ctx.caches.listings
            key = keys.listing(query, reader.revision, schema.digest)
            budget = self.ctx.budget()  # one for the whole request: the walk and every candidate's check
            every: list[str] | None = listings.get(key)
            if every is None:
                every = sorted(candidate_resources(schema, reader, resource_type, permission, subj, budget,
                                                  max_depth=self.ctx.config.limits.max_depth))
                listings.put(key, every)
            candidates = every if place.after is None else every[bisect.bisect_right(every, place.after):]
            resolve = self.checks.request_chain()
            results: list[LookupResult] = []
            for rid in candidates:
                r = self.checks.decide(schema, reader, BulkCheckItem(ObjectRef(resource_type, rid), permission,
                                                                     subj, context), resolve, budget)
                if r.permissionship is Permissionship.NO_PERMISSION:
                    continue
                results.append(LookupResult(rid, r.permissionship, r.missing_context))
                if limit is not None and len(results) > limit:
                    break  # one more result exists: only now is a cursor due
            page, next_cursor = place.page(results, limit, revision=reader.revision, position=_resource_id)
            self._record(start, cursor, caller, schema, reader.revision, len(page), lookup="resources",
                         resource_type=resource_type, permission=permission, subject=str(subj), context=context)
            return LookupResourcesPage(page, next_cursor, encode_token(reader.revision))

    def lookup_subjects(self, resource: ObjectRef | str, permission: str, subject_type: str,
                        subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                        consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None, caller: str | None = None) -> LookupSubjectsPage:
        """See :meth:`~headwater.engine.Engine.lookup_subjects`."""
        start = time.perf_counter_ns()
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        relation = None if subject_relation in (None, "", "...") else subject_relation
        validate_context(context)
        query = json.dumps(["LS", str(res), permission, subject_type, relation, dict(context or {})],
                           sort_keys=True, default=str)
        validate_limit(limit)
        place = Place.start(query, cursor, consistency)
        with self.ctx.snapshot(place.consistency) as (reader, schema):
            _validate_member(schema, res.type, permission)
            if subject_type not in schema.definitions:
                raise InvalidRequestError(f"object definition `{subject_type}` not found")
            if relation is not None and schema.member(subject_type, relation) is None:
                raise InvalidRequestError(f"relation/permission `{relation}` not found under definition "
                                          f"`{subject_type}`")
            budget = self.ctx.budget()  # one for the whole request: the walk and every candidate's check
            found = candidate_subjects(schema, reader, res, permission, subject_type, relation, budget)
            resolve = self.checks.request_chain()

            def check(sid: str) -> CheckResult:
                return self.checks.decide(schema, reader, BulkCheckItem(res, permission,
                                                                        SubjectRef(subject_type, sid, relation),
                                                                        context), resolve, budget)

            concrete = {sid: check(sid) for sid in sorted(found.ids)}
            ordered: list[SubjectResult] = []
            if found.wildcard and relation is None:
                fresh = FRESH_ID
                while fresh in found.ids:
                    fresh += "-"
                w = check(fresh)
                if w.permissionship is not Permissionship.NO_PERMISSION:
                    # Subjects the wildcard's answer does not hold for (no permission, or only
                    # conditionally where the wildcard grants outright).
                    excluded = tuple(SubjectRef(subject_type, sid) for sid, r in concrete.items()
                                     if r.permissionship is not w.permissionship
                                     or r.missing_context != w.missing_context)
                    ordered.append(SubjectResult(SubjectRef(subject_type, "*"), w.permissionship,
                                                 w.missing_context, excluded))
            ordered.extend(SubjectResult(SubjectRef(subject_type, sid, relation), r.permissionship,
                                         r.missing_context)
                           for sid, r in concrete.items() if r.permissionship is not Permissionship.NO_PERMISSION)
            if place.after is not None:
                ordered = [o for o in ordered if o.subject.id != "*" and o.subject.id > place.after]
            page, next_cursor = place.page(ordered, limit, revision=reader.revision, position=_subject_position)
            self._record(start, cursor, caller, schema, reader.revision, len(page), lookup="subjects",
                         resource=str(res), permission=permission,
                         subject_type=subject_type + (f"#{relation}" if relation else ""), context=context)
            return LookupSubjectsPage(page, next_cursor, encode_token(reader.revision))

    def _record(self, start: int, cursor: str | None, caller: str | None, schema: dsl_schema.Schema, revision: int,
                count: int, **fields: Any) -> None:
        """One audit record for this call, when the log records lookups."""
        audit = self.ctx.audit
        if audit is None or not audit.wants_lookups():
            return
        audit.wait(audit.record_lookup(
            time=self.ctx.clock(), caller=caller, count=count, continued=cursor is not None,
            revision=revision, token=encode_token(revision), schema_digest=schema.digest,
            latency_us=(time.perf_counter_ns() - start) // 1000, **fields))


def _validate_member(schema: dsl_schema.Schema, resource_type: str, permission: str) -> None:
    if schema.member(resource_type, permission) is None:
        raise UnknownPermissionError(
            f"relation/permission `{permission}` not found under definition `{resource_type}`"
            if resource_type in schema.definitions else f"object definition `{resource_type}` not found")


def _resource_id(result: LookupResult) -> str:
    return result.resource_id


def _subject_position(result: SubjectResult) -> str:
    return result.subject.id if result.subject.id != "*" else ""
