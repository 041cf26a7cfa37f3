"""Schema limits, deep schemas and caveat names through every public interface: Engine, CLI and gRPC.

Regression tests for issue 14: a deeply nested schema answered INTERNAL from WriteSchema and
"maximum recursion depth exceeded" (no position) from `headwater lint`; a `caveat ab(...)` was
accepted by lint and stored, then every relationship naming `[ab]` was refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.dsl import DslError, SchemaLimitError
from headwater.dsl.limits import MAX_EXPRESSION_NESTING_CEILING
from headwater.engine import Engine
from headwater.engine.cli import main
from headwater.engine.config import Config, load_config
from headwater.engine.errors import ConfigError
from headwater.engine.store.memory import MemoryStore

from test_limits import alternating, schema_with  # tests/dsl is on sys.path (rootdir-relative test modules)

DEEP = schema_with(alternating(250))  # the reported case: about 250 levels of alternating nesting
DEEP_AT = (5, 22 + 7 * 32)  # the 33rd operator, one past the default limit
CAVEATED = ("caveat ab(x int) {\n  x == 1\n}\ndefinition user {}\ndefinition doc {\n"
            "    relation viewer: user with ab\n    permission view = viewer\n}\n")


# ---------------------------------------------------------------- Engine


def test_engine_write_schema_refuses_deep_nesting_with_its_position() -> None:
    with Engine(MemoryStore()) as engine:
        for write in (engine.write_schema, engine.plan_schema):
            with pytest.raises(SchemaLimitError) as info:
                write(DEEP)
            assert (info.value.line, info.value.column) == DEEP_AT


def test_engine_applies_the_limits_of_its_config() -> None:
    text = "definition user {}\ndefinition doc {}\ndefinition folder {}\n"
    with Engine(MemoryStore(), config=Config.of(max_schema_definitions=2)) as engine:
        with pytest.raises(SchemaLimitError) as info:
            engine.write_schema(text)
        assert (info.value.line, info.value.column) == (3, 12)
    with Engine(MemoryStore(), config=Config.of(max_schema_bytes=len(text) - 1)) as engine:
        with pytest.raises(SchemaLimitError, match="max_schema_bytes"):
            engine.write_schema(text)
    with Engine(MemoryStore()) as engine:
        assert engine.write_schema(text).version == 1


def test_a_stored_schema_stays_readable_when_the_limits_are_lowered(tmp_path: Path) -> None:
    path = tmp_path / "hw.db"
    with Engine.open(path, config=Config.of(max_expression_nesting=40)) as engine:
        engine.write_schema(schema_with(alternating(40)))
        engine.touch("doc:d1#aaa@user:ann", "doc:d1#bbb@user:bob")
        answers = [engine.check("doc:d1", "ppp", who).permissionship for who in ("user:ann", "user:bob")]
    with Engine.open(path) as engine:  # the default, 32
        assert [engine.check("doc:d1", "ppp", who).permissionship for who in ("user:ann", "user:bob")] == answers
        assert engine.read_schema().text == schema_with(alternating(40))


def _deep_stack(depth: int, fn):
    """Run ``fn`` from ``depth`` frames down (a server thread's stack is deeper than a test's)."""
    return fn() if depth == 0 else _deep_stack(depth - 1, fn)


def test_at_the_nesting_ceiling_write_check_expand_and_lookup_work_from_a_deep_stack() -> None:
    config = Config.of(max_expression_nesting=MAX_EXPRESSION_NESTING_CEILING)
    with Engine(MemoryStore(), config=config) as engine:
        text = schema_with(alternating(MAX_EXPRESSION_NESTING_CEILING))
        _deep_stack(150, lambda: engine.write_schema(text))
        engine.touch("doc:d1#aaa@user:ann", "doc:d1#bbb@user:bob")
        result = _deep_stack(150, lambda: engine.check("doc:d1", "ppp", "user:ann"))
        assert result.allowed is not None
        _deep_stack(150, lambda: engine.expand("doc:d1", "ppp"))
        _deep_stack(150, lambda: (engine.lookup_resources("doc", "ppp", "user:ann")))
        _deep_stack(150, lambda: engine.check("doc:d1", "ppp", "user:bob", explain=True))


def test_a_caveat_named_ab_is_usable_in_relationships() -> None:
    with Engine(MemoryStore()) as engine:
        engine.write_schema(CAVEATED)
        engine.touch('doc:d1#viewer@user:ann[ab:{"x":1}]', "doc:d2#viewer@user:ann[ab]")
        assert engine.check("doc:d1", "view", "user:ann").allowed
        assert not engine.check("doc:d2", "view", "user:ann", context={"x": 2}).allowed


# ---------------------------------------------------------------- settings


def test_the_limits_are_settings_with_flags_environment_and_file(tmp_path: Path) -> None:
    config_file = tmp_path / "hw.toml"
    config_file.write_text("[limits]\nmax_schema_definitions = 300\nmax_definition_members = 40\n")
    config = load_config({"max_expression_nesting": 12}, {"HEADWATER_MAX_SCHEMA_BYTES": "65536"}, str(config_file),
                         serving=False)
    limits = config.limits
    assert (limits.max_schema_bytes, limits.max_schema_definitions, limits.max_definition_members,
            limits.max_expression_nesting) == (65536, 300, 40, 12)
    with pytest.raises(ConfigError, match="max_expression_nesting must be an integer from 1 to 100"):
        Config.of(max_expression_nesting=MAX_EXPRESSION_NESTING_CEILING + 1)
    with pytest.raises(ConfigError, match="max_schema_bytes must be a positive integer"):
        Config.of(max_schema_bytes=0)


def test_serve_has_a_flag_for_each_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--max-schema-bytes", "--max-schema-definitions", "--max-definition-members",
                 "--max-expression-nesting"):
        assert flag in out


# ---------------------------------------------------------------- CLI


@pytest.fixture()
def deep_file(tmp_path: Path) -> Path:
    path = tmp_path / "deep.zed"
    path.write_text(DEEP)
    return path


def test_lint_reports_deep_nesting_with_its_position(deep_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(deep_file)]) == 1
    captured = capsys.readouterr()
    assert f"{deep_file}:5:246: expression nested too deeply: more than 32 levels" in captured.out
    assert "recursion" not in captured.out + captured.err and "Traceback" not in captured.err


def test_lint_handles_a_long_flat_expression_and_a_huge_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    flat, many, huge = tmp_path / "flat.zed", tmp_path / "many.zed", tmp_path / "huge.zed"
    flat.write_text(schema_with(" + ".join(["aaa", "bbb"] * 5_000)))
    many.write_text("".join(f"definition d{i:05d} {{}}\n" for i in range(6_000)))
    huge.write_text("definition doc {}\n" * 200_000)  # 3.6 MB
    assert main(["lint", str(flat)]) == 0
    assert main(["lint", str(many), str(huge)]) == 1
    out = capsys.readouterr().out
    assert f"{many}:5001:12: too many definitions: more than the limit of 5,000" in out
    assert f"{huge}:29128:3: schema too large: 3,600,000 bytes, more than the limit of 524,288 bytes" in out


def test_fmt_reports_deep_nesting_with_its_position(deep_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", str(deep_file)]) == 2
    assert f"{deep_file}:5:246: expression nested too deeply" in capsys.readouterr().err


def test_validate_reports_deep_nesting_with_its_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("schema: |-\n" + "".join(f"  {line}\n" for line in DEEP.splitlines()) + "relationships: ''\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:6: schema error at schema line 5, column 246: expression nested too deeply" in out


def test_lint_accepts_the_caveat_names_relationships_accept(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.zed"
    path.write_text(CAVEATED)
    assert main(["lint", str(path)]) == 0
    path.write_text(CAVEATED.replace("ab", "a" * 129))
    assert main(["lint", str(path)]) == 1
    assert "caveat names are 1 to 128 characters" in capsys.readouterr().out


# ---------------------------------------------------------------- gRPC


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from headwater.engine.service.server import HeadwaterServer

    started = []

    def make(**settings):
        db = str(tmp_path_factory.mktemp("db") / "hw.db")
        server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=db, insecure_no_auth=True, **settings)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(grace=0)


def _client(server):
    from headwater.engine.client import Client

    return Client(server.address, timeout=30.0)


def test_grpc_write_schema_answers_invalid_argument_with_line_and_column(server_factory) -> None:
    with _client(server_factory()) as client:
        for text in (DEEP, schema_with(alternating(5_000))):
            with pytest.raises(DslError) as info:
                client.write_schema(text)
            assert getattr(info.value, "code") == "INVALID_ARGUMENT"
            assert type(info.value) is SchemaLimitError
            assert "line 5, column 246: expression nested too deeply" in str(info.value)


def test_grpc_write_schema_applies_the_servers_limits(server_factory) -> None:
    with _client(server_factory(max_definition_members=2)) as client:
        with pytest.raises(SchemaLimitError) as info:
            client.write_schema("definition doc {\n    relation aaa: doc\n    relation bbb: doc\n"
                                "    relation ccc: doc\n}\n")
        assert getattr(info.value, "code") == "INVALID_ARGUMENT"
        assert "line 4, column 14: too many members in definition `doc`" in str(info.value)


def test_grpc_at_the_nesting_ceiling_nothing_is_internal(server_factory) -> None:
    server = server_factory(max_expression_nesting=MAX_EXPRESSION_NESTING_CEILING)
    with _client(server) as client:
        client.write_schema(schema_with(alternating(MAX_EXPRESSION_NESTING_CEILING)))
        client.touch("doc:d1#aaa@user:ann", "doc:d1#bbb@user:bob")
        assert client.check("doc:d1", "ppp", "user:ann").allowed is not None
        client.expand("doc:d1", "ppp")
        (client.lookup_resources("doc", "ppp", "user:ann"))


def test_grpc_relationships_can_name_a_caveat_called_ab(server_factory) -> None:
    with _client(server_factory()) as client:
        client.write_schema(CAVEATED)
        client.touch('doc:d1#viewer@user:ann[ab:{"x":1}]')
        assert client.check("doc:d1", "view", "user:ann").allowed
