"""Conversion between SpiceDB's ``authzed.api.v1`` messages and engine values, in both directions.

The same rules as :mod:`headwater.engine.service.convert`: nothing but conversion, engine
constructors check every field (a malformed message is an
:class:`~headwater.engine.errors.InvalidRequestError` naming the field). Where a v1 message
has the same fields as its ``headwater.v1`` twin (``ObjectReference``, ``SubjectReference``,
``Relationship`` with ``optional_caveat`` and ``optional_expires_at``, a context ``Struct``),
the ``headwater.v1`` conversion reads it unchanged.

A ZedToken's text is a Headwater revision token (``hw1_...``), so a token from either API
is accepted by the other.

Example::

    >>> from authzed.api.v1 import Consistency, ZedToken
    >>> consistency_from_v1(Consistency(at_least_as_fresh=ZedToken(token="hw1_gixogxtaoy"))).token
    'hw1_gixogxtaoy'
    >>> str(relationship_from_v1(relationship_to_v1(relationship_from_text("doc:1#viewer@user:ann"))))
    'doc:1#viewer@user:ann'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authzed.api.v1 import core_pb2, permission_service_pb2
from google.protobuf import struct_pb2

from ...consistency import Consistency
from ...errors import InvalidRequestError
from ...expand import ExpandNode, ExpandOperation
from ...relationships import Relationship, parse_relationship
from ...results import BulkCheckItem, Permissionship, SubjectResult
from ...store import Precondition, RelationshipFilter
from ..convert import (
    consistency_from_proto,
    context_from_proto,
    object_from_proto,
    relationship_from_proto,
    relationship_to_proto,
    subject_from_proto,
    update_from_proto,
)
from ..pb import core_pb2 as headwater_core

__all__ = [
    "TRANSACTION_KEYS",
    "check_item_from_v1",
    "consistency_from_v1",
    "context_from_v1",
    "expand_tree_to_v1",
    "filter_from_v1",
    "lookup_permissionship_to_v1",
    "object_from_v1",
    "partial_caveat_info",
    "permissionship_to_v1",
    "precondition_from_v1",
    "relationship_from_text",
    "relationship_from_v1",
    "relationship_to_v1",
    "resolved_subject_to_v1",
    "subject_from_v1",
    "transaction_metadata_from_v1",
    "update_from_v1",
    "zed_token",
]

#: The keys of ``optional_transaction_metadata`` that name who writes and why (required for declassifications).
TRANSACTION_KEYS = ("actor", "reason")

object_from_v1 = object_from_proto  # ObjectReference: object_type, object_id
subject_from_v1 = subject_from_proto  # SubjectReference: object, optional_relation
relationship_from_v1 = relationship_from_proto  # Relationship: resource, relation, subject, caveat, expiration
update_from_v1 = update_from_proto  # RelationshipUpdate: the same operation numbers (CREATE 1, TOUCH 2, DELETE 3)


def relationship_from_text(text: str) -> Relationship:
    """A relationship from SpiceDB's text form (``doc:1#viewer@user:ann``)."""
    return parse_relationship(text)


def zed_token(token: str) -> core_pb2.ZedToken:
    """The ZedToken carrying a Headwater revision token."""
    return core_pb2.ZedToken(token=token)


# ------------------------------------------------------------------ consistency and context


def consistency_from_v1(msg: permission_service_pb2.Consistency, present: bool = True) -> Consistency | None:
    """None (minimize latency, the engine's default) when unset; a ZedToken's text is a Headwater token, so the
    requirement is read as ``headwater.v1``'s with that text."""
    kind = msg.WhichOneof("requirement") if present else None
    if kind is None:
        return None
    value = getattr(msg, kind)
    requirement = value.token if kind.startswith("at_") else value
    return consistency_from_proto(headwater_core.Consistency(**{kind: requirement}))


def context_from_v1(msg: Any) -> dict[str, Any] | None:
    """The request's caveat context (its ``context`` Struct), None when absent."""
    return context_from_proto(msg.context, msg.HasField("context"))


def transaction_metadata_from_v1(msg: Any) -> dict[str, str | None]:
    """``actor`` and ``reason`` from ``optional_transaction_metadata`` (None where absent or empty); other keys are
    kept by SpiceDB for its Watch stream and ignored here."""
    if not msg.HasField("optional_transaction_metadata"):
        return dict.fromkeys(TRANSACTION_KEYS)
    fields = msg.optional_transaction_metadata.fields
    out: dict[str, str | None] = {}
    for key in TRANSACTION_KEYS:
        value: struct_pb2.Value | None = fields.get(key)
        if value is None or value.WhichOneof("kind") in (None, "null_value"):
            out[key] = None
        elif value.WhichOneof("kind") != "string_value":
            raise InvalidRequestError(f"optional_transaction_metadata key {key!r} must be a string")
        else:
            out[key] = value.string_value or None
    return out


# ------------------------------------------------------------------ checks


_PERMISSIONSHIP = {
    Permissionship.NO_PERMISSION: permission_service_pb2.CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION,
    Permissionship.HAS_PERMISSION: permission_service_pb2.CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION,
    Permissionship.CONDITIONAL_PERMISSION:
        permission_service_pb2.CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION,
}
_LOOKUP = {Permissionship.HAS_PERMISSION: permission_service_pb2.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
           Permissionship.CONDITIONAL_PERMISSION: permission_service_pb2.LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION}


def permissionship_to_v1(p: Permissionship) -> int:
    return _PERMISSIONSHIP[p]


def lookup_permissionship_to_v1(p: Permissionship) -> int:
    return _LOOKUP[p]


def partial_caveat_info(missing: Sequence[str]) -> core_pb2.PartialCaveatInfo | None:
    """The missing caveat parameters of a conditional answer (None when nothing is missing)."""
    return core_pb2.PartialCaveatInfo(missing_required_context=list(missing)) if missing else None


def check_item_from_v1(msg: permission_service_pb2.CheckBulkPermissionsRequestItem) -> BulkCheckItem:
    return BulkCheckItem(object_from_v1(msg.resource, "resource"), msg.permission, subject_from_v1(msg.subject),
                         context_from_v1(msg))


def resolved_subject_to_v1(r: SubjectResult) -> permission_service_pb2.LookupSubjectsResponse:
    """One LookupSubjects answer, in the current fields and the deprecated ones SpiceDB still fills. An excluded
    subject of a wildcard is reported as SpiceDB does, with HAS_PERMISSION (the permission it is excluded from)."""
    missing = partial_caveat_info(r.missing_context)
    permissionship = lookup_permissionship_to_v1(r.permissionship)
    excluded = [permission_service_pb2.ResolvedSubject(
        subject_object_id=s.id, permissionship=permission_service_pb2.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION)
        for s in r.excluded]
    return permission_service_pb2.LookupSubjectsResponse(
        subject=permission_service_pb2.ResolvedSubject(subject_object_id=r.subject.id, permissionship=permissionship,
                                                       partial_caveat_info=missing),
        excluded_subjects=excluded, subject_object_id=r.subject.id,
        excluded_subject_ids=[s.id for s in r.excluded], permissionship=permissionship, partial_caveat_info=missing)


# ------------------------------------------------------------------ relationships, filters, updates


def relationship_to_v1(rel: Relationship) -> core_pb2.Relationship:
    """The v1 message of ``rel``: ``headwater.v1``'s Relationship has the same field numbers and types (down to
    the caveat's Struct and the expiration's Timestamp), so its bytes are a v1 Relationship."""
    return core_pb2.Relationship.FromString(relationship_to_proto(rel).SerializeToString())


def filter_from_v1(msg: permission_service_pb2.RelationshipFilter) -> RelationshipFilter:
    """A v1 filter; a subject filter's ``optional_relation`` given with an empty relation means subjects without
    one (``...``), as in SpiceDB."""
    subject_type = subject_id = subject_relation = None
    if msg.HasField("optional_subject_filter"):
        s = msg.optional_subject_filter
        subject_type, subject_id = s.subject_type or None, s.optional_subject_id or None
        if s.HasField("optional_relation"):
            subject_relation = s.optional_relation.relation or "..."
    return RelationshipFilter(resource_type=msg.resource_type or None, resource_id=msg.optional_resource_id or None,
                              resource_id_prefix=msg.optional_resource_id_prefix or None,
                              relation=msg.optional_relation or None, subject_type=subject_type,
                              subject_id=subject_id, subject_relation=subject_relation)


def precondition_from_v1(msg: permission_service_pb2.Precondition) -> Precondition:
    """A precondition, read by its operation's name (the numbers are not headwater.v1's: there MUST_MATCH is 1)."""
    if not msg.HasField("filter"):
        raise InvalidRequestError("one of the specified preconditions is empty")
    names = permission_service_pb2.Precondition.Operation
    must_match = {"OPERATION_MUST_MATCH": True, "OPERATION_MUST_NOT_MATCH": False}.get(
        names.Name(msg.operation) if msg.operation in names.values() else "")
    if must_match is None:
        raise InvalidRequestError(f"invalid precondition operation {msg.operation}: give OPERATION_MUST_MATCH "
                                  "or OPERATION_MUST_NOT_MATCH")
    return Precondition(filter_from_v1(msg.filter), must_match)


_ALGEBRA = {ExpandOperation.UNION: core_pb2.AlgebraicSubjectSet.OPERATION_UNION,
            ExpandOperation.INTERSECTION: core_pb2.AlgebraicSubjectSet.OPERATION_INTERSECTION,
            ExpandOperation.EXCLUSION: core_pb2.AlgebraicSubjectSet.OPERATION_EXCLUSION}


def expand_tree_to_v1(node: ExpandNode) -> core_pb2.PermissionRelationshipTree:
    """An engine expand tree as SpiceDB's PermissionRelationshipTree: each node names what it expands
    (``expanded_object``, ``expanded_relation``); an operation node is ``intermediate`` (union, intersection,
    exclusion: the first child minus the others), a leaf lists its direct subjects.

    >>> from headwater.engine.expand import ExpandedSubject
    >>> from headwater.engine.relationships import ObjectRef, SubjectRef
    >>> leaf = ExpandNode(ObjectRef("doc", "1"), "viewer", subjects=(ExpandedSubject(SubjectRef("user", "ann"), None),))
    >>> tree = expand_tree_to_v1(ExpandNode(ObjectRef("doc", "1"), "view", ExpandOperation.UNION, (leaf,)))
    >>> tree.intermediate.children[0].leaf.subjects[0].object.object_id
    'ann'
    """
    out = core_pb2.PermissionRelationshipTree(
        expanded_object=core_pb2.ObjectReference(object_type=node.resource.type, object_id=node.resource.id),
        expanded_relation=node.name)
    if node.operation is None:
        out.leaf.SetInParent()
        for x in node.subjects:
            relation = x.subject.relation if x.subject.relation not in (None, "...") else ""
            out.leaf.subjects.append(core_pb2.SubjectReference(
                object=core_pb2.ObjectReference(object_type=x.subject.type, object_id=x.subject.id),
                optional_relation=relation))
    else:
        out.intermediate.operation = _ALGEBRA[node.operation]
        out.intermediate.children.extend(expand_tree_to_v1(child) for child in node.children)
    return out
