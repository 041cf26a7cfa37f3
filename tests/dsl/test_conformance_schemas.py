"""Every schema in (or referenced by) SpiceDB's conformance data compiles, formats and round-trips."""

from __future__ import annotations


import pytest
import yaml

from headwater.dsl import DslError, DslSyntaxError, compile_schema, format_schema, parse_schema

from tests.conformance import CONFORMANCE

pytestmark = pytest.mark.conformance
# Fixtures that must fail (tests/conformance/data/README.md, "Loader fixtures"): name -> (line, column, message fragment).
INVALID = {
    "loader/invalid_schemafile.zed": (6, 18, "unexpected name `example`; expected `:`"),
    "loader/loader_using_invalid_schemafile.yaml": (6, 18, "unexpected name `example`; expected `:`"),
    "loader/invalid_caveat.yaml": (3, 32, "unknown caveat `some_caveat`"),
}


def _schemas() -> list[tuple[str, str]]:
    out = []
    files = sorted(CONFORMANCE.rglob("*.yaml")) + sorted(CONFORMANCE.rglob("*.skip")) + sorted(
        CONFORMANCE.rglob("*.zed"))
    for path in files:
        rel = path.relative_to(CONFORMANCE).as_posix()
        if path.suffix == ".zed":
            out.append((rel, path.read_text()))
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not isinstance(doc, dict):
                continue
            text = doc.get("schema")
            if text is None and isinstance(doc.get("schemaFile"), str):
                target = (path.parent / doc["schemaFile"]).resolve()
                if not target.is_file() or CONFORMANCE not in target.parents:
                    continue  # loader fixtures that must fail to load (missing / escaping file)
                text = target.read_text()
            if isinstance(text, str):
                out.append((rel if i == 0 else f"{rel}#{i}", text))
    return out


SCHEMAS = _schemas()


def test_the_conformance_data_is_there() -> None:
    assert len(SCHEMAS) >= 60


@pytest.mark.parametrize("name, text", [s for s in SCHEMAS if s[0] not in INVALID], ids=lambda v: v if "\n" not in v else "")
def test_schema_compiles_and_round_trips(name: str, text: str) -> None:
    model = compile_schema(text, filename=name)
    doc = parse_schema(text)
    canonical = format_schema(doc)
    assert parse_schema(canonical) == doc
    assert compile_schema(canonical) == model


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_fixtures_fail_where_spicedb_says(name: str) -> None:
    texts = dict(SCHEMAS)
    line, column, fragment = INVALID[name]
    with pytest.raises(DslError) as e:
        compile_schema(texts[name])
    assert (e.value.line, e.value.column) == (line, column)
    assert fragment in e.value.message
    if name.endswith("invalid_schemafile.zed"):
        assert isinstance(e.value, DslSyntaxError)
