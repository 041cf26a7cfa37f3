"""A retrieval-augmented generation filter: keep only the retrieved documents a user may see.

A retriever (a vector store; here a plain list) returns candidate document ids; before
they reach the prompt, the filter asks Headwater, through SpiceDB's API and the official
`authzed` client, which of them the user may ``view``:

- ``filter_by_check``: one CheckBulkPermissions call for all the candidates;
- ``filter_by_lookup``: one LookupResources call (every document the user may view),
  intersected with the candidates: better when the candidates are many and the visible
  documents few.

Both keep the retriever's order and fail closed: a conditional answer (a caveat
missing context) or an error for one document drops that document.

Commands (see README.md): ``setup`` (write schema.zed and relationships.txt),
``clear USER LEVEL`` (give a user a clearance) and ``filter USER DOC...``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionResponse,
    Client,
    Consistency,
    LookupResourcesRequest,
    ObjectReference,
    Relationship,
    RelationshipUpdate,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
    permission_service_pb2,
)
from grpcutil import insecure_bearer_token_credentials

HERE = Path(__file__).resolve().parent
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
LOOKUP_HAS = permission_service_pb2.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
_RELATIONSHIP = re.compile(r"^(\w[\w-]*):([\w*-]+)#(\w+)@(\w[\w-]*):([\w*-]+)(?:#(\w+))?$")


def _consistency(token: ZedToken | None) -> Consistency:
    """At least as fresh as ``token`` (the last write), else fully consistent."""
    return Consistency(at_least_as_fresh=token) if token is not None else Consistency(fully_consistent=True)


def _user(user: str) -> SubjectReference:
    return SubjectReference(object=ObjectReference(object_type="user", object_id=user))


def filter_by_check(client: Client, user: str, candidates: Sequence[str], *, permission: str = "view",
                    token: ZedToken | None = None) -> list[str]:
    """The candidates ``user`` may ``permission``, in the retriever's order: one CheckBulkPermissions call."""
    if not candidates:
        return []
    response = client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=_consistency(token), items=[
        CheckBulkPermissionsRequestItem(resource=ObjectReference(object_type="document", object_id=doc),
                                        permission=permission, subject=_user(user)) for doc in candidates]))
    return [doc for doc, pair in zip(candidates, response.pairs, strict=True)
            if pair.HasField("item") and pair.item.permissionship == HAS]


def filter_by_lookup(client: Client, user: str, candidates: Sequence[str], *, permission: str = "view",
                     token: ZedToken | None = None) -> list[str]:
    """The same answer from one LookupResources call: every document the user may see, kept if retrieved."""
    visible = {r.resource_object_id for r in client.LookupResources(LookupResourcesRequest(
        consistency=_consistency(token), resource_object_type="document", permission=permission,
        subject=_user(user))) if r.permissionship == LOOKUP_HAS}
    return [doc for doc in candidates if doc in visible]


def relationship(text: str) -> Relationship:
    """``type:id#relation@type:id[#relation]`` as a v1 Relationship."""
    match = _RELATIONSHIP.match(text.strip())
    if match is None:
        raise ValueError(f"not a relationship: {text!r}")
    rtype, rid, relation, stype, sid, srel = match.groups()
    return Relationship(resource=ObjectReference(object_type=rtype, object_id=rid), relation=relation,
                        subject=SubjectReference(object=ObjectReference(object_type=stype, object_id=sid),
                                                 optional_relation=srel or ""))


def touch(client: Client, lines: Sequence[str]) -> ZedToken:
    """Write (TOUCH) the relationships; the ZedToken of the write."""
    return client.WriteRelationships(WriteRelationshipsRequest(updates=[
        RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=relationship(line))
        for line in lines if line.strip()])).written_at


def setup(client: Client) -> ZedToken:
    """Write schema.zed, then relationships.txt."""
    client.WriteSchema(WriteSchemaRequest(schema=(HERE / "schema.zed").read_text(encoding="utf-8")))
    return touch(client, (HERE / "relationships.txt").read_text(encoding="utf-8").splitlines())


def clear(client: Client, user: str, level: str) -> ZedToken:
    """Clear ``user`` for ``level`` (and so for every lower level)."""
    return touch(client, [f"sensitivity:{level}#cleared@user:{user}"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--token", default="rag-example", help="the bearer token (any token on serve-testing)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="write schema.zed and relationships.txt")
    clearing = commands.add_parser("clear", help="clear a user for a level")
    clearing.add_argument("user")
    clearing.add_argument("level")
    filtering = commands.add_parser("filter", help="print the candidate documents the user may see")
    filtering.add_argument("user")
    filtering.add_argument("documents", nargs="+")
    filtering.add_argument("--lookup", action="store_true", help="LookupResources instead of CheckBulkPermissions")
    args = parser.parse_args(argv)

    client = Client(args.address, insecure_bearer_token_credentials(args.token))
    if args.command == "setup":
        print(setup(client).token)
    elif args.command == "clear":
        print(clear(client, args.user, args.level).token)
    else:
        keep = filter_by_lookup if args.lookup else filter_by_check
        print("\n".join(keep(client, args.user, args.documents)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
