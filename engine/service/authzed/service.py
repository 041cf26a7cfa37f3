"""Serving ``authzed.api.v1`` through the handler layer of ``headwater.v1``: the services, scopes and heavy calls.

The v1 RPCs run through the same :mod:`..handlers` as Headwater's own (authentication,
deadlines, the work budget, heavy-call turns, logging, the audit caller), with the
:data:`RULES` of this API: each v1 method needs the scope of its ``headwater.v1`` twin
(:data:`TWINS`, scopes from :data:`..auth.METHOD_SCOPES`), and errors end as SpiceDB's
(:func:`.errors.failure_for`).

Example::

    >>> METHOD_SCOPES["/authzed.api.v1.PermissionsService/CheckPermission"]
    'check'
    >>> [name.removeprefix("authzed.api.v1.") for name in service_names()]
    ['PermissionsService', 'SchemaService', 'ExperimentalService', 'WatchService']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from authzed.api.v1 import experimental_service_pb2, permission_service_pb2, schema_service_pb2, watch_service_pb2

from ...config import Config
from ..auth import METHOD_SCOPES as HEADWATER_SCOPES
from ..auth import TokenEntry, TokenSet
from ..errors import PermissionDeniedError
from ..handlers import ApiRules, service_handler
from ..servicer import Servicer
from .errors import failure_for
from .servicer import AuthzedServicer

__all__ = ["HEAVY_METHODS", "METHOD_SCOPES", "RULES", "SERVICES", "TWINS", "build_authzed_handlers",
           "require_scope", "service_names"]

#: (generated module, service name) of each v1 service served.
SERVICES: tuple[tuple[Any, str], ...] = (
    (permission_service_pb2, "PermissionsService"),
    (schema_service_pb2, "SchemaService"),
    (experimental_service_pb2, "ExperimentalService"),
    (watch_service_pb2, "WatchService"),
)

_P, _S = "/authzed.api.v1.PermissionsService/", "/authzed.api.v1.SchemaService/"
_E, _W = "/authzed.api.v1.ExperimentalService/", "/authzed.api.v1.WatchService/"
_HP, _HR, _HS = "/headwater.v1.PermissionService/", "/headwater.v1.RelationshipService/", "/headwater.v1.SchemaService/"

#: Each v1 method's ``headwater.v1`` twin: the v1 method needs the twin's scope.
TWINS: Mapping[str, str] = {
    _P + "CheckPermission": _HP + "Check", _P + "CheckBulkPermissions": _HP + "CheckBulk",
    _P + "ExpandPermissionTree": _HP + "Expand", _P + "LookupResources": _HP + "LookupResources",
    _P + "LookupSubjects": _HP + "LookupSubjects", _P + "ReadRelationships": _HR + "Read",
    _P + "WriteRelationships": _HR + "Write", _P + "DeleteRelationships": _HR + "Delete",
    _P + "ImportBulkRelationships": _HR + "Import", _P + "ExportBulkRelationships": _HR + "Export",
    _S + "ReadSchema": _HS + "Read", _S + "WriteSchema": _HS + "Write", _S + "ReflectSchema": _HS + "Read",
    _S + "ComputablePermissions": _HS + "Read", _S + "DependentRelations": _HS + "Read",
    _S + "DiffSchema": _HS + "Read",
    _E + "BulkImportRelationships": _HR + "Import", _E + "BulkExportRelationships": _HR + "Export",
    _E + "BulkCheckPermission": _HP + "CheckBulk", _E + "ExperimentalReflectSchema": _HS + "Read",
    _E + "ExperimentalComputablePermissions": _HS + "Read", _E + "ExperimentalDependentRelations": _HS + "Read",
    _E + "ExperimentalDiffSchema": _HS + "Read", _E + "ExperimentalRegisterRelationshipCounter": _HR + "Write",
    _E + "ExperimentalCountRelationships": _HR + "Read", _E + "ExperimentalUnregisterRelationshipCounter": _HR + "Write",
    _W + "Watch": _HR + "Watch",
}

#: The scope each v1 method needs (full gRPC method name -> scope).
METHOD_SCOPES: Mapping[str, str] = {method: HEADWATER_SCOPES[twin] for method, twin in TWINS.items()}

#: v1 calls whose work grows with the data: they take turns with Headwater's heavy calls.
HEAVY_METHODS = frozenset({_P + "ExpandPermissionTree", _P + "LookupResources", _P + "LookupSubjects",
                           _P + "ReadRelationships", _P + "ExportBulkRelationships",
                           _E + "BulkExportRelationships"})


def require_scope(entry: TokenEntry, method: str) -> None:
    """PermissionDeniedError unless ``entry`` has the scope the v1 ``method`` needs."""
    scope = METHOD_SCOPES.get(method)
    if scope is None or scope not in entry.scopes:
        raise PermissionDeniedError(f"token {entry.name!r} lacks the {scope or 'required'!s} scope needed "
                                    f"for {method}")


RULES = ApiRules(require_scope, HEAVY_METHODS, failure_for)


def service_names() -> list[str]:
    """Full names of the v1 services served, e.g. ``authzed.api.v1.PermissionsService``."""
    return [module.DESCRIPTOR.services_by_name[name].full_name for module, name in SERVICES]


def build_authzed_handlers(servicer: Servicer, tokens: TokenSet | None,
                           config: Config | None = None) -> list[grpc.GenericRpcHandler]:
    """One generic handler per v1 service over ``servicer``'s engine, sharing its lifecycle (draining, running
    calls, heavy turns, the work budget)."""
    v1 = AuthzedServicer(servicer.engine, config, watcher=servicer)
    return [service_handler(module.DESCRIPTOR.services_by_name[name], lambda rpc: getattr(v1, rpc), tokens,
                            servicer, RULES)
            for module, name in SERVICES]
