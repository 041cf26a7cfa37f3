"""A service's use of the Headwater client, checked with ``mypy --strict`` (tests/client/test_typed_example.py).

Run it against a server (``make serve`` starts one with the ai-lineage policy)::

    .venv/bin/python examples/client/typed_example.py localhost:50051
"""

from __future__ import annotations

import asyncio
import sys

from headwater.client import (
    AsyncClient,
    CheckResult,
    Client,
    LookupResourcesPage,
    NotFoundError,
    RemoteError,
    RetryPolicy,
    WriteResult,
)

RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=1.0)


def can_view(client: Client, output: str, user: str) -> bool:
    result: CheckResult = client.check(f"output:{output}", "view", f"user:{user}", timeout=0.5)
    return result.allowed


def share(client: Client, output: str, user: str) -> str:
    written: WriteResult = client.touch(f"output:{output}#viewer@user:{user}", actor="user:service")
    return written.token


async def visible(address: str, user: str) -> list[str]:
    async with AsyncClient(address, timeout=5.0, retry=RETRY) as client:
        page: LookupResourcesPage = await client.lookup_resources("output", "view", f"user:{user}")
        ids = [r.resource_id for r in page.results]
        while page.cursor is not None:
            page = await client.lookup_resources("output", "view", f"user:{user}", limit=100, cursor=page.cursor)
            ids += [r.resource_id for r in page.results]
        return ids


def main(address: str) -> int:
    try:
        with Client(address, timeout=5.0, retry=RETRY) as client:
            print(client.health(), can_view(client, "o1", "alice"))
            print(sorted(asyncio.run(visible(address, "alice"))))
    except NotFoundError as err:  # no schema yet
        print(f"not found: {err}")
        return 1
    except RemoteError as err:
        print(f"{err.code}: {err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "localhost:50051"))
