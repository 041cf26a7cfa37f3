"""Workspaces without a server: limits, expiry, eviction, rows, import/export; the packaged example in step with
examples/ai-lineage; the playground modules' docstring examples."""

from __future__ import annotations

import doctest
import importlib

import pytest
import yaml

from headwater.engine.errors import LimitExceededError, ValidationFileError
from headwater.engine.playground import Limits, Workspaces
from headwater.engine.playground.files import export_yaml, import_yaml
from headwater.engine.playground.rows import Row, row_from_json
from headwater.engine.validationfile import run_validation_file

from .conftest import EXAMPLE, REPO


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("name", ["headwater.engine.playground.files", "headwater.engine.playground.inspect",
                                  "headwater.engine.playground.rows", "headwater.engine.playground.workspaces"])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


def test_idle_workspaces_expire_and_the_count_is_bounded() -> None:
    clock = Clock()
    spaces = Workspaces(Limits(max_workspaces=3, idle_seconds=60), clock=clock)
    a, b, c = spaces.create(), spaces.create(), spaces.create()
    clock.now += 30
    assert spaces.get(a.id) is a  # used again: its idle time restarts
    d = spaces.create()  # one more than the limit: the least recently used (b) goes
    assert spaces.get(b.id) is None and len(spaces) == 3
    clock.now += 45
    assert spaces.get(c.id) is None  # idle 75 s
    assert spaces.get(a.id) is a and spaces.get(d.id) is d


def test_sizes_are_bounded() -> None:
    ws = Workspaces(Limits(max_relationships=2, max_schema_bytes=100, max_assertions_bytes=50)).create()
    with pytest.raises(LimitExceededError):
        ws.set_schema("definition user {}\n" * 10)
    with pytest.raises(LimitExceededError):
        ws.set_rows([{"text": f"user:a#friend@user:{i}"} for i in range(3)])
    with pytest.raises(LimitExceededError):
        ws.set_assertions("assertions:\n  assertTrue: []\n" * 4)
    too_many = export_yaml("definition user {\n relation friend: user\n}", [Row(f"user:a#friend@user:{i}")
                                                                           for i in range(3)], "")
    with pytest.raises(LimitExceededError):
        ws.import_text(too_many)


def test_a_lineage_cycle_is_blamed_on_the_row_that_closes_it() -> None:
    ws = Workspaces().create()
    ws.set_schema("definition data {\n    lineage from: data\n}")
    errors = ws.set_rows([{"text": "data:b#from@data:a"}, {"text": "data:c#from@data:b"},
                          {"text": "data:a#from@data:c"}])
    assert errors[:2] == [None, None] and "cyclic" in errors[2]
    assert ws.rows == ()


def test_rows_need_an_actor_and_a_reason_together() -> None:
    with pytest.raises(ValueError, match="both an actor and a reason"):
        row_from_json({"text": "doc:1#scrubbed@level:high", "actor": "user:stew"})
    with pytest.raises(ValueError, match="context needs a caveat"):
        row_from_json({"resource": "doc:1", "relation": "viewer", "subject": "user:a", "context": "{}"})


def test_a_schema_with_errors_keeps_the_rows_syntax_checked() -> None:
    ws = Workspaces().create()
    assert ws.set_schema("definition doc {")[0]["severity"] == "error"
    assert ws.set_rows([{"text": "doc:1#viewer@user:a"}]) == [None]
    assert "missing '@'" in ws.set_rows([{"text": "doc:1#viewer"}])[0]


def test_import_names_the_line_of_a_bad_relationship() -> None:
    with pytest.raises(ValidationFileError) as info:
        import_yaml("schema: |-\n  definition user {}\nrelationships: |-\n  user:a#friend@user:b\n  nope\n")
    assert info.value.line == 5


def test_a_schema_starting_with_indentation_exports_and_imports_back() -> None:
    schema = "  definition user {}\n\n  // trailing"
    text = export_yaml(schema, [], "")
    assert yaml.safe_load(text)["schema"] == schema and import_yaml(text).schema == schema


def test_the_packaged_example_is_examples_ai_lineage_with_the_schema_inline() -> None:
    packaged = yaml.safe_load(EXAMPLE.read_text())
    original = yaml.safe_load((REPO / "examples/ai-lineage/validation.yaml").read_text())
    assert packaged["schema"] == (REPO / "examples/ai-lineage/policy.zed").read_text().rstrip("\n")
    for key in ("relationships", "assertions", "validation"):
        strip = (lambda v: "\n".join(line for line in v.splitlines() if "// declassified by user:" not in line)
                 ) if key == "relationships" else (lambda v: v)
        assert strip(packaged.get(key)) == original.get(key), key
    assert run_validation_file(EXAMPLE).ok


def test_the_committed_page_was_built_from_the_sources() -> None:
    """engine/playground/static/ is built from playground/ (cd playground && npm ci && npm run build)."""
    import hashlib

    recorded = (REPO / "engine/playground/static/sources.sha256").read_text().splitlines()
    names = ["playground/build.mjs", "playground/package-lock.json",
             *sorted(f"playground/src/{p.name}" for p in (REPO / "playground/src").iterdir())]
    assert [line.split("  ", 1)[1] for line in recorded] == names, "a source was added or removed: build again"
    for line in recorded:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((REPO / name).read_bytes()).hexdigest() == digest, f"{name} changed: build again"
