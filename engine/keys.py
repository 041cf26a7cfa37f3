"""Every cache key the engine uses, computed here and nowhere else (SpiceDB's ``internal/dispatch/keys``).

A key names an immutable fact, so a cached value never needs invalidating (only
expiring, for outcomes that read an expiring relationship):

- a **check scope** is what every sub-problem of one check shares: the schema
  digest, the revision, the subject and the request context (canonical JSON),
  joined into one string (a string caches its hash, so a sub-problem key, hashed
  at every probe, costs four cached hashes; no part can hold the NUL separator:
  ids and names exclude it and JSON escapes it);
- a **sub-problem** key is a scope plus the resource and the relation or
  permission asked about: ``(scope, type, id, name)``;
- an **asked check** key is a top-level check exactly as a caller spelled it
  (resource and subject as text), so a repeated check is one probe with no
  parsing; it has five plain fields, so it never equals a sub-problem key;
- **lineage** keys (effective labels, upstream sets), **schema** keys and
  **program** keys name facts of one revision or one schema digest.

Two keys are spelled out where they are built, because a call there would be a
large part of the cost: the sub-problem key in the chain's resolvers and the
asked-check key on the warm path. ``tests/engine/test_cache.py`` holds both
spellings equal to these functions.

Example::

    >>> scope = check_scope("d1", 7, "", "user", "tom", "")
    >>> subproblem(scope, "doc", "1", "view")
    ('d1\\x007\\x00user\\x00tom\\x00\\x00', 'doc', '1', 'view')
    >>> context_key({"b": 1, "a": [2]})
    '{"a":[2],"b":1}'
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any, TypeAlias

__all__ = [
    "CheckScope",
    "asked_check",
    "check_scope",
    "context_key",
    "effective_labels",
    "listing",
    "program",
    "schema_at",
    "subproblem",
    "upstream",
]

CheckScope: TypeAlias = str
"""Schema digest, revision, subject type, subject id, subject relation (or "") and context key, NUL-joined."""


def context_key(context: Mapping[str, Any] | None) -> str:
    """A check's context as canonical JSON (``""`` for none): part of every key of that check."""
    if not context:
        return ""
    return json.dumps(context, sort_keys=True, separators=(",", ":"), default=str)


def check_scope(digest: str, revision: int, context: str, subject_type: str, subject_id: str,
                subject_relation: str) -> CheckScope:
    """What every sub-problem of one check shares (``context`` from :func:`context_key`)."""
    return f"{digest}\0{revision}\0{subject_type}\0{subject_id}\0{subject_relation}\0{context}"


def subproblem(scope: CheckScope, resource_type: str, resource_id: str, name: str) -> Hashable:
    """The key of one sub-problem: does the scope's subject have ``name`` on ``resource_type:resource_id``?"""
    return (scope, resource_type, resource_id, name)


def asked_check(digest: str, revision: int, resource: str, permission: str, subject: str) -> Hashable:
    """The key of a top-level check without context, as the caller wrote it (``"doc:1"``, ``"user:tom"``)."""
    return (digest, revision, resource, permission, subject)


def effective_labels(digest: str, revision: int, obj: Hashable) -> Hashable:
    """The key of an object's effective labels at a revision."""
    return ("labels", digest, revision, obj)


def upstream(digest: str, revision: int, obj: Hashable) -> Hashable:
    """The key of the objects upstream of an object (with their paths) at a revision."""
    return ("upstream", digest, revision, obj)


def schema_at(revision: int) -> Hashable:
    """The key of the stored schema in force at a revision (one store per cache)."""
    return revision


def program(digest: str, traced: bool) -> Hashable:
    """The key of a schema compiled for the evaluator (``traced``: with the explanation hooks)."""
    return (digest, traced)


def listing(query: str, revision: int, digest: str) -> Hashable:
    """The key of one lookup listing's candidates (``query`` names its parameters), for its next pages."""
    return (query, revision, digest)
