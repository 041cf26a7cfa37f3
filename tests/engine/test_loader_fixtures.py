"""SpiceDB's loader fixtures: which validation files load, and the clear error each broken one gets."""

from __future__ import annotations


import pytest

from headwater.engine.cli import main
from headwater.engine.validationfile import run_validation_file

from tests.conformance import CONFORMANCE

LOADER = CONFORMANCE / "loader"
ROOT = CONFORMANCE

LOAD_OK = ["loader_no_comment", "loader_with_comment", "loader_using_schemafile", "basic_caveats", "caveat_order",
           "requires_chunking"]
MUST_FAIL = {
    "just_rels": (3, "no schema has been written yet"),
    "schema_and_schemafile": (2, "either `schema` or `schemaFile`, not both"),
    "loader_using_invalid_schemafile": (6, "line 6, column 18: unexpected name `example`"),
    "loader_using_non-local_schemafile": (2, "is outside"),
    "loader_using_missing_schemafile": (2, "not found"),
    "legacy": (2, "legacy format"),
    "invalid_caveat": (5, "unknown caveat `some_caveat`"),
    "invalid_caveated_rel": (13, "`user with some_caveat` are not allowed on relation `resource#reader`"),
    "invalid_caveated_rel_syntax": (15, "some_caveat{"),
    "repeated_relationship": (15, "repeated relationship"),
}

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("name", LOAD_OK)
def test_loads(name: str) -> None:
    report = run_validation_file(LOADER / f"{name}.yaml", root=ROOT)
    assert report.load_error is None, report.load_error
    assert report.relationships >= (501 if name == "requires_chunking" else 1)


def test_initial_schema_then_just_rels_load_together(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(LOADER / "initial_schema_and_rels.yaml"), str(LOADER / "just_rels.yaml")]
    assert main(["validate", "--together", "--root", str(ROOT), *files]) == 0
    assert "relationships" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(MUST_FAIL))
def test_fails_with_a_clear_error(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    line, fragment = MUST_FAIL[name]
    report = run_validation_file(LOADER / f"{name}.yaml", root=ROOT)
    assert report.load_error is not None
    assert report.load_error.line == line, str(report.load_error)
    assert fragment in str(report.load_error)
    assert main(["validate", "--root", str(ROOT), str(LOADER / f"{name}.yaml")]) == 1
    assert f"{name}.yaml:{line}:" in capsys.readouterr().out
