"""The Python client of a running Headwater server: ``Client("localhost:50051", token=...)``.

Its methods mirror :class:`~headwater.engine.Engine` (``check``, ``check_bulk``,
``lookup_resources``, ``expand``, ``write``, ``touch``, ``read_relationships``,
``write_schema``, ``effective_labels``, ...) and return the same result types or
close equivalents; a failed call raises the engine error the server raised, or
:class:`RemoteError` (authentication, scopes, unavailability, deadlines). The
implementation is ``headwater.engine.service.client`` (gRPC's one home is
``engine/service``); see docs/grpc.md.

Example (against a server started with ``headwater serve``)::

    from headwater.engine.client import Client

    with Client("localhost:50051", token="hw_live_...") as client:
        if client.check("output:o1", "view", "user:alice").allowed:
            ...
"""

from .service.client import Client, ClientTls, ExportResult, RemoteError, SchemaVersionInfo, SchemaWriteReport

__all__ = ["Client", "ClientTls", "ExportResult", "RemoteError", "SchemaVersionInfo", "SchemaWriteReport"]
