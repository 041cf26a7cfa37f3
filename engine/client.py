"""The Python client of a running Headwater server, kept at its first name: it is :mod:`headwater.client`.

``from headwater.engine.client import Client`` still works (the CLI's remote commands use it); new code imports
``from headwater.client import Client`` (or ``AsyncClient``), which does not load the engine. See docs/grpc.md.

Example (against a server started with ``headwater serve``)::

    from headwater.engine.client import Client

    with Client("localhost:50051", token="hw_live_...") as client:
        if client.check("output:o1", "view", "user:alice").allowed:
            ...
"""

from __future__ import annotations

from ..client import (
    AsyncClient,
    Client,
    ClientTls,
    ExportResult,
    RemoteError,
    RetryPolicy,
    SchemaVersionInfo,
    SchemaWriteReport,
)

__all__ = ["AsyncClient", "Client", "ClientTls", "ExportResult", "RemoteError", "RetryPolicy", "SchemaVersionInfo",
           "SchemaWriteReport"]
