"""The client's former home: it is :mod:`headwater.client` now (blocking and asyncio, with retries and deadlines).

Kept so that ``from headwater.engine.service.client import Client`` keeps working.

Example (needs a running server)::

    client = Client("localhost:50051", token="hw_live_...", tls=ClientTls(ca="ca.pem"))
    client.check("output:o1", "view", "user:alice").allowed
"""

from __future__ import annotations

from ...client import Client, ClientTls, ExportResult, RemoteError, SchemaVersionInfo, SchemaWriteReport

__all__ = ["Client", "ClientTls", "ExportResult", "RemoteError", "SchemaVersionInfo", "SchemaWriteReport"]
