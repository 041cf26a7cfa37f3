"""Bearer tokens and scopes: no token or a wrong one is UNAUTHENTICATED, a missing scope PERMISSION_DENIED."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest

from headwater.engine.client import Client, RemoteError
from headwater.engine.consistency import encode_token
from headwater.engine.service.auth import METHOD_SCOPES, TokenFileError, load_token_file
from headwater.engine.config import Config
from headwater.engine.errors import ConfigError
from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS, client_for

# One call per scope, each needing exactly that scope.
CALLS = {
    "check": lambda c: c.check("document:readme", "view", "user:ann"),
    "write": lambda c: c.touch("document:auth#viewer@user:eve"),
    "schema": lambda c: c.write_schema(c_schema(), dry_run=True),
    "audit": lambda c: c.schema_history(),
}


def c_schema() -> str:
    from .conftest import SCHEMA

    return SCHEMA


@pytest.mark.parametrize("scope", sorted(CALLS))
def test_no_token_is_unauthenticated(server, scope: str) -> None:
    with client_for(server, None) as c, pytest.raises(RemoteError) as e:
        CALLS[scope](c)
    assert e.value.code == "UNAUTHENTICATED" and "missing bearer token" in str(e.value)


@pytest.mark.parametrize("scope", sorted(CALLS))
def test_wrong_token_is_unauthenticated(server, scope: str) -> None:
    with Client(server.address, token="not-a-real-token-at-all") as c, pytest.raises(RemoteError) as e:
        CALLS[scope](c)
    assert e.value.code == "UNAUTHENTICATED" and "invalid bearer token" in str(e.value)


def test_malformed_authorization_is_unauthenticated(server) -> None:
    channel = grpc.insecure_channel(server.address)
    from headwater.engine.service.pb import schema_pb2, schema_pb2_grpc

    stub = schema_pb2_grpc.SchemaServiceStub(channel)
    for header in ("Basic abc", "Bearer", "Bearer   ", TOKENS["admin"][0]):
        with pytest.raises(grpc.RpcError) as e:
            stub.History(schema_pb2.SchemaHistoryRequest(), metadata=(("authorization", header),), timeout=5)
        assert e.value.code() is grpc.StatusCode.UNAUTHENTICATED
    channel.close()


@pytest.mark.parametrize("who", sorted(TOKENS))
@pytest.mark.parametrize("scope", sorted(CALLS))
def test_scopes(server, who: str, scope: str) -> None:
    with client_for(server, who) as c:
        if scope in TOKENS[who][1]:
            CALLS[scope](c)
        else:
            with pytest.raises(RemoteError) as e:
                CALLS[scope](c)
            assert e.value.code == "PERMISSION_DENIED"
            assert f"token {who!r} lacks the {scope} scope" in str(e.value)


def test_every_method_names_a_known_scope() -> None:
    assert set(METHOD_SCOPES.values()) == {"check", "write", "schema", "audit"}


def test_watch_needs_audit(server) -> None:
    with client_for(server, "reader") as c, pytest.raises(RemoteError) as e:
        c.watch(encode_token(1), timeout=1)
    assert e.value.code == "PERMISSION_DENIED"
    with client_for(server, "auditor") as c:
        assert isinstance(c.watch(encode_token(1), timeout=0.2), list)


def test_tokens_are_never_logged_but_names_are(server, access_log) -> None:
    with client_for(server, "reader") as c:
        c.check("document:readme", "view", "user:ann")
        with pytest.raises(RemoteError):
            c.touch("document:x#viewer@user:eve")
    with Client(server.address, token="wrong-token-wrong-token") as c, pytest.raises(RemoteError):
        c.check("document:readme", "view", "user:ann")
    # (a Watch stream of an earlier test may log its end meanwhile: only this test's calls are compared)
    records = [r for r in access_log.records if not r["method"].endswith("/Watch")]
    assert [(r["status"], r["token"]) for r in records] == [
        ("OK", "reader"), ("PERMISSION_DENIED", "reader"), ("UNAUTHENTICATED", None)]
    assert {"method", "status", "duration_ms", "token", "peer"} <= set(records[0])
    text = "\n".join(access_log.texts)
    for secret, _ in TOKENS.values():
        assert secret not in text
    assert "wrong-token" not in text


def test_hashed_tokens(tmp_path: Path) -> None:
    secret = "a-hashed-token-0123456789"
    f = tmp_path / "t.toml"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    f.write_text(f'[[tokens]]\nname = "ci"\nscopes = ["check"]\nsha256 = "{digest}"\n')
    tokens = load_token_file(f)
    assert tokens.authorize("/headwater.v1.PermissionService/Check", [("authorization", f"Bearer {secret}")]) == "ci"


@pytest.mark.parametrize("text, message", [
    ("", "no [[tokens]] entries"),
    ("[[tokens]]\nname = 'a'\nscopes = ['check']\n", "exactly one of token or sha256"),
    ("[[tokens]]\nname = 'a'\nscopes = ['check']\ntoken = 'short'\n", "at least 16 characters"),
    ("[[tokens]]\nname = 'a'\nscopes = ['root']\ntoken = '0123456789abcdefgh'\n", "unknown scopes ['root']"),
    ("[[tokens]]\nname = 'a'\nscopes = []\ntoken = '0123456789abcdefgh'\n", "non-empty list"),
    ("[[tokens]]\nname = 'a'\nscopes = ['check']\nsha256 = 'xyz'\n", "64 hex digits"),
    ("[[tokens]]\nname = 'a'\nscopes = ['check']\ntoken = '0123456789abcdefgh'\n"
     "[[tokens]]\nname = 'a'\nscopes = ['check']\ntoken = '0123456789abcdefgi'\n", "used twice"),
    ("[[tokens]]\nname = 'a'\nscopes = ['check']\ntoken = '0123456789abcdefgh'\nextra = 1\n", "unknown keys"),
    ("tokens = [", "not valid TOML"),
])
def test_token_file_errors_name_the_problem_without_the_token(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "t.toml"
    f.write_text(text)
    with pytest.raises(TokenFileError) as e:
        load_token_file(f)
    assert message in str(e.value) and "0123456789abcdefg" not in str(e.value)


def test_auth_is_required_unless_explicitly_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--insecure-no-auth"):
        HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:"))
    with pytest.raises(TokenFileError, match="cannot read token file"):
        HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:",
                                     token_file=str(tmp_path / "missing.toml"))).start()


def test_insecure_no_auth_serves_everyone_and_says_so_loudly(make_server, caplog) -> None:
    with caplog.at_level("WARNING", logger="headwater.service"):
        server = make_server(insecure_no_auth=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len([w for w in warnings if "AUTHENTICATION IS OFF" in w]) == 1 and "AUTHENTICATION IS OFF" in warnings[0]
    with client_for(server, None) as c:
        c.write_schema(c_schema())
        assert c.touch("document:open#viewer@user:eve").token
