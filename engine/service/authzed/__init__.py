"""SpiceDB's gRPC API, ``authzed.api.v1``, served next to ``headwater.v1`` on the same server.

Existing SpiceDB clients (the official ``authzed`` packages, ``zed``, integrations) switch to
Headwater by changing the address. The messages and servicer bases are the generated
classes of the official ``authzed`` Python package (no proto is copied here):

- :mod:`.convert`: v1 messages <-> engine values (ZedTokens are Headwater revision tokens);
- :mod:`.servicer`: one method per v1 RPC, over the Engine only;
- :mod:`.errors`: errors as SpiceDB reports them (codes and ``ErrorReason`` details);
- :mod:`.service`: the services, the scope of each method, and the handlers.

docs/grpc.md ("SpiceDB's API") lists what is served; docs/decisions/authzed-api.md
says why it is built this way and what is not done yet.

Example::

    >>> from headwater.engine.service.authzed import service_names
    >>> "authzed.api.v1.PermissionsService" in service_names()
    True
"""

from .service import METHOD_SCOPES, build_authzed_handlers, service_names

__all__ = ["METHOD_SCOPES", "build_authzed_handlers", "service_names"]
