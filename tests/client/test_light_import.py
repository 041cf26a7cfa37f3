"""``import headwater.client`` stays light: no schema parser (lark), CEL, YAML, SQLite or PostgreSQL driver, nor the
evaluator; and a client so imported answers a real server. Run in a fresh interpreter whose imports of those
libraries fail, so that even an import that something later drops would be caught."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from headwater.engine.service.server import HeadwaterServer

HEAVY = ("lark", "cel_expr_python", "yaml", "psycopg", "psycopg_pool", "sqlite3")

PROGRAM = textwrap.dedent('''
    import sys

    HEAVY = set(sys.argv[2].split(","))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ImportError(f"headwater.client must not import {name}")
            return None

    sys.meta_path.insert(0, Blocker())

    import asyncio

    import headwater.client
    from headwater.client import AsyncClient, Client

    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY
                    or m in ("headwater.engine.api", "headwater.engine.evaluator", "headwater.dsl.parser"))
    assert not loaded, loaded
    with Client(sys.argv[1], timeout=10.0) as client:
        assert client.check("document:readme", "view", "user:bob").allowed
        assert not client.check("document:readme", "view", "user:mallory").allowed
        assert client.touch("document:light#viewer@user:bob").token


    async def main():
        async with AsyncClient(sys.argv[1], timeout=10.0) as client:
            return (await client.check("document:light", "view", "user:bob")).allowed

    assert asyncio.run(main())
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY or m == "headwater.engine.api")
    assert not loaded, loaded
    print("ok")
''')


def test_import_headwater_client_loads_no_heavy_library_and_calls_a_server(server: HeadwaterServer) -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, server.address, ",".join(HEAVY)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("ok")


def test_the_engine_still_imports_everything_on_demand() -> None:
    """The lazy packages still give every name of their __all__ (tests/test_public_api.py checks them too)."""
    program = ("import headwater.engine as e, headwater.dsl as d, headwater.engine.audit as a, sys\n"
               "assert 'headwater.engine.api' not in sys.modules\n"
               "from headwater.engine import Engine, MemoryStore\n"
               "assert e.api.Engine is Engine and 'lark' in sys.modules\n"
               "assert all(hasattr(m, n) for m in (e, d, a) for n in m.__all__)\n"
               "assert not hasattr(e, 'no_such_name')\n")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
