"""CLI commands against a live deployment (`--server ADDR`), so policy authors can work on a running server."""

from __future__ import annotations

import pytest

from headwater.engine.cli import main

from .conftest import TOKENS


def test_commands_talk_to_a_running_server(make_server, capsys: pytest.CaptureFixture[str]) -> None:
    server = make_server()
    admin = ["--server", server.address, "--token", TOKENS["admin"][0]]
    schema = "definition user {}\ndefinition doc {\n relation viewer: user\n lineage source: doc\n" \
             " permission view = viewer\n}\n"
    from headwater.engine.client import Client

    with Client(server.address, token=TOKENS["admin"][0]) as c:
        c.write_schema(schema, actor="user:admin")
    assert main(["relationships", "touch", *admin, "doc:a#viewer@user:ann", "doc:b#source@doc:a"]) == 0
    assert main(["lookup-resources", "doc", "view", "user:ann", *admin]) == 0
    assert "doc:a  HAS_PERMISSION" in capsys.readouterr().out
    assert main(["lookup-subjects", "doc:a", "view", "user", *admin]) == 0
    assert "user:ann  HAS_PERMISSION" in capsys.readouterr().out
    assert main(["relationships", "read", *admin, "--resource-type", "doc"]) == 0
    assert "doc:a#viewer@user:ann" in capsys.readouterr().out
    assert main(["ancestors", "doc:b", *admin]) == 0
    assert "doc:a" in capsys.readouterr().out
    assert main(["check", "doc:a", "view", "user:ann", *admin]) == 0
    # a reader token may not write: the server's PERMISSION_DENIED is a clear error, exit 2
    reader = ["--server", server.address, "--token", TOKENS["reader"][0]]
    assert main(["relationships", "touch", *reader, "doc:c#viewer@user:ann"]) == 2
    assert "scope" in capsys.readouterr().err.lower()
    # neither --db nor --server
    assert main(["lookup-resources", "doc", "view", "user:ann"]) == 2
    assert "--server" in capsys.readouterr().err
