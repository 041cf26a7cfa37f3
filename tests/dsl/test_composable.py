"""Composable schemas (dsl/composable.py): `import` and `partial` flattened into one schema, as zed compiles them.

The expectations follow zed's own tests (SpiceDB's `pkg/schemadsl/compiler/importer-test` and the partial cases of
`compiler_test.go`): the flattened schema must have the digest of the schema written by hand, and every error is
located in the file it comes from.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from headwater.dsl import DslError, ast, compile_schema, format_schema, lint_schema, parse_schema, read_schema_files
from headwater.dsl.errors import (
    DslSyntaxError,
    DuplicateNameError,
    PartialError,
    SchemaImportError,
    UnknownTypeError,
    UseFlagError,
)
from headwater.engine import Engine
from headwater.engine.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]


def _files(folder: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> text) under ``folder``; the path of the first one (the root)."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder / next(iter(files))


def _type(name: str) -> str:
    return "d_caveat" if name == "caveat" else name  # `caveat` is a keyword


def _errors(exc: DslError) -> list[tuple[str, int, int, str]]:
    """(file name relative to its folder, line, column, class) of each error, in order."""
    return [(os.path.basename(e.filename or ""), e.line, e.column, type(e).__name__) for e in exc.errors]


def _read_error(root: Path) -> DslError:
    with pytest.raises(DslError) as info:
        read_schema_files(root).compile()
    assert info.value is info.value.errors[0]
    return info.value


# ---------------------------------------------------------------- parsing and formatting


def test_the_syntax_parses_into_its_own_nodes_and_formats_back() -> None:
    text = ('use import\nuse partial\n\n// the people\nimport "subjects.zed"  // first\nimport \'sub/b.zed\'\n\n'
            'partial viewable {\n    relation viewer: user\n    ...other  // nested\n}\n\n'
            'definition document {\n    ...viewable\n    relation owner: user\n}\n')
    doc = parse_schema(text)
    imports = [i for i in doc.items if isinstance(i, ast.ImportStatement)]
    assert [i.path for i in imports] == ["subjects.zed", "sub/b.zed"]
    assert imports[0].comments[0].text == "// the people" and imports[0].trailing_comment.text == "// first"
    partial = next(i for i in doc.items if isinstance(i, ast.Partial))
    assert partial.name == "viewable" and isinstance(partial.members[1], ast.PartialReference)
    assert doc.definitions[0].members[0] == ast.PartialReference("viewable")
    formatted = format_schema(doc)
    assert formatted == text.replace("'sub/b.zed'", '"sub/b.zed"')  # fmt keeps a file composable
    assert parse_schema(formatted) == doc


def test_import_and_partial_stay_ordinary_names() -> None:
    schema = compile_schema("definition import {}\ndefinition partial {\n relation import: import\n"
                            " relation partial: partial\n permission both = import + partial\n}")
    assert sorted(schema.definitions["partial"].relations) == ["import", "partial"]


def test_a_syntax_error_lists_no_composable_keywords() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse_schema("defintion user {}")
    assert "import" not in info.value.message and "partial" not in info.value.message
    with pytest.raises(DslSyntaxError) as info:
        parse_schema('use import\nimport subjects.zed')
    assert info.value.message == "unexpected name `subjects`; expected a quoted file path"


# ---------------------------------------------------------------- partials (text alone, as the API takes it)


@pytest.mark.parametrize("partials, definition", [
    # zed's compiler_test.go: simple, defined after the reference, transitive in any order, forking
    ("partial view_partial {\n relation user: user\n}", "...view_partial"),
    ("partial transitive_partial {\n ...view_partial\n}\npartial view_partial {\n relation user: user\n}",
     "...transitive_partial"),
    ("partial view_partial {\n relation user: user\n}\npartial transitive_partial {\n ...view_partial\n}",
     "...transitive_partial"),
    ("partial transitive_partial {\n ...view_partial\n ...group_partial\n}\npartial view_partial {\n"
     " relation user: user\n}\npartial group_partial {\n relation group: group\n}", "...transitive_partial"),
])
def test_partials_splice_like_zed(partials: str, definition: str) -> None:
    body = f"use partial\n{partials}\ndefinition user {{}}\ndefinition group {{}}\ndefinition simple {{\n {definition}\n}}"
    for text in (body, body.replace("use partial\n", "use partial\ndefinition first {}\n", 0)):
        relations = list(compile_schema(text).definitions["simple"].relations)
        assert relations == (["user", "group"] if "group_partial" in text else ["user"])


def test_members_land_where_the_reference_was_and_the_digest_is_the_hand_flattened_one() -> None:
    composed = compile_schema("use partial\n\ndefinition user {}\ndefinition organization {}\n\n"
                              "partial view_partial {\n    relation user: user\n    permission view = user\n}\n\n"
                              "definition resource {\n    relation organization: organization\n"
                              "    permission manage = organization\n\n    ...view_partial\n}\n")
    by_hand = compile_schema("definition user {}\ndefinition organization {}\ndefinition resource {\n"
                             "    relation organization: organization\n    permission manage = organization\n"
                             "    relation user: user\n    permission view = user\n}\n")
    assert composed.digest == by_hand.digest


@pytest.mark.parametrize("text, expected", [
    ("use partial\ndefinition simple {\n  ...some_partial\n}",
     [(3, 6, "PartialError", "unknown partial `some_partial`")]),
    ("use partial\ndefinition some_definition {}\ndefinition simple {\n  ...some_definition\n}",
     [(4, 6, "PartialError", "unknown partial `some_definition`: `some_definition` is a definition, and `...` "
       "splices only partials")]),
    ("use partial\npartial one_partial {\n  ...another_partial\n}\npartial another_partial {\n  ...one_partial\n}\n"
     "definition simple {\n  ...one_partial\n}",
     [(6, 6, "PartialError", "partials splice each other in a cycle: `one_partial` → `another_partial` → "
       "`one_partial`")]),
    ("use partial\npartial itself {\n  ...itself\n}\ndefinition simple {\n  ...itself\n}",
     [(3, 6, "PartialError", "partials splice each other in a cycle: `itself` → `itself`")]),
    ("use partial\npartial simple {\n  relation user: user\n}\ndefinition simple {\n  ...simple\n}",
     [(5, 12, "DuplicateNameError", "the name `simple` is already used by the partial at line 2")]),
    ("use partial\ncaveat some_caveat(someparam int) { someparam == 42 }\npartial some_caveat {\n"
     "  relation user: user\n}",
     [(3, 9, "DuplicateNameError", "the name `some_caveat` is already used by the caveat at line 2")]),
    ("use partial\npartial twice {\n  relation user: user\n}\npartial twice {\n  relation admin: user\n}",
     [(5, 9, "DuplicateNameError", "the name `twice` is already used by the partial at line 2")]),
    ("use partial\npartial p {\n  relation user: user\n}\ndefinition user {}\ndefinition document {\n"
     "  relation user: user\n  ...p\n}",
     [(8, 3, "DuplicateNameError", "duplicate relation or permission `user` in definition `document`: `...p` adds "
       "it, and it is already there (line 7)")]),
    ("partial p {\n  relation user: user\n}",
     [(1, 1, "UseFlagError", "`partial` needs `use partial` at the top of this file")]),
    ("use partial\ndefinition user {}\nuse expiration\npartial p {\n  relation user: user\n}",
     [(3, 1, "UseFlagError", "`use expiration` must come before any definition or caveat")]),
])
def test_partial_errors_are_located(text: str, expected: list[tuple[int, int, str, str]]) -> None:
    with pytest.raises(DslError) as info:
        compile_schema(text, filename="schema.zed")
    got = [(e.line, e.column, type(e).__name__, e.message) for e in info.value.errors]
    assert got == expected
    assert all(e.filename == "schema.zed" and e.source == text for e in info.value.errors)


def test_partials_may_come_before_use_lines_and_unused_partials_are_dropped() -> None:
    schema = compile_schema("use partial\npartial unused {\n  relation ghost: nowhere\n}\nuse expiration\n"
                            "definition user {}")
    assert list(schema.definitions) == ["user"] and "expiration" in schema.flags


def test_text_with_an_import_is_refused_precisely() -> None:
    text = 'use import\n\nimport "subjects.zed"\n\ndefinition document {\n    relation viewer: user\n}\n'
    with pytest.raises(SchemaImportError) as info:
        compile_schema(text)
    assert (info.value.line, info.value.column) == (3, 1)
    assert info.value.message.startswith("`import` needs files")
    assert "unexpected name" not in info.value.render() and "headwater schema write FILE" in info.value.message
    with pytest.raises(SchemaImportError):
        lint_schema(text)
    with pytest.raises(SchemaImportError, match="`import` needs files"):  # the API: the engine refuses it too
        Engine(MemoryStore()).write_schema(text)


def test_the_engine_takes_partials_as_spicedb_does() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema("use partial\npartial owned {\n  relation owner: user\n}\ndefinition user {}\n"
                        "definition doc {\n  ...owned\n}")
    assert "partial owned" in engine.read_schema().text


# ---------------------------------------------------------------- files


def test_imports_flatten_as_zed_compiles_them(tmp_path: Path) -> None:
    """SpiceDB's importer-test "many-imports": each file once, at its first import, after the files it imports."""
    imports = {"apps": ["caveat", "teams"], "aws": ["caveat", "teams"], "caveat": [], "iam": ["apps", "caveat", "teams"],
               "okta": ["caveat", "teams"], "teams": ["caveat"]}
    files = {"root.zed": "use import\n\n" + "".join(f'import "{n}.zed"\n' for n in sorted(imports))}
    for name, deps in imports.items():
        head = "use import\n\n" + "".join(f'import "{d}.zed"\n' for d in deps) if deps else ""
        body = "".join(f"\trelation {_type(d)}: {_type(d)}\n" for d in deps)
        files[f"{name}.zed"] = f"{head}\n// {name}\ndefinition {_type(name)} {{\n{body}}}\n"
    read = read_schema_files(_files(tmp_path, files))
    expected = ("// caveat\ndefinition d_caveat {}\n\n// teams\ndefinition teams {\n    relation d_caveat: d_caveat\n}\n\n"
                "// apps\ndefinition apps {\n    relation d_caveat: d_caveat\n    relation teams: teams\n}\n\n"
                "// aws\ndefinition aws {\n    relation d_caveat: d_caveat\n    relation teams: teams\n}\n\n"
                "// iam\ndefinition iam {\n    relation apps: apps\n    relation d_caveat: d_caveat\n"
                "    relation teams: teams\n}\n\n"
                "// okta\ndefinition okta {\n    relation d_caveat: d_caveat\n    relation teams: teams\n}\n")
    assert read.text == expected
    assert read.compile().digest == compile_schema(expected).digest
    assert read.imports and list(read.texts)[0] == str(tmp_path / "root.zed")


def test_nested_folders_diamonds_flags_and_partials_across_files(tmp_path: Path) -> None:
    root = _files(tmp_path, {
        "root.zed": 'use import\nuse partial\n\nimport "./subjects.zed"\nimport "docs/documents.zed"\n\n'
                    "partial viewable {\n    relation viewer: user\n    permission view = viewer\n}\n\n"
                    "definition folder {\n    ...viewable\n}\n",
        "subjects.zed": "definition user {}\n",
        "docs/documents.zed": 'use import\nuse expiration\n\nimport "shared/subjects.zed"\nimport "shared/x.zed"\n\n'
                              "definition document {\n    relation temp: user with expiration\n    ...viewable\n}\n",
        "docs/shared/subjects.zed": "definition team {}\n",
        "docs/shared/x.zed": 'use import\nimport "subjects.zed"\n\ndefinition thing {\n    relation team: team\n}\n',
    })
    by_hand = ("use expiration\n\ndefinition user {}\n\ndefinition team {}\n\ndefinition thing {\n"
               "    relation team: team\n}\n\ndefinition document {\n    relation temp: user with expiration\n"
               "    relation viewer: user\n    permission view = viewer\n}\n\ndefinition folder {\n"
               "    relation viewer: user\n    permission view = viewer\n}\n")
    read = read_schema_files(root)
    assert read.text == format_schema(parse_schema(by_hand))
    assert read.compile().digest == compile_schema(by_hand).digest
    assert [os.path.relpath(n, tmp_path) for n in read.texts] == [
        "root.zed", "subjects.zed", "docs/documents.zed", "docs/shared/subjects.zed", "docs/shared/x.zed"]


def test_a_plain_file_reads_as_written(tmp_path: Path) -> None:
    text = "definition user {}\n\n\ndefinition doc {relation viewer: user\n}\n"
    read = read_schema_files(_files(tmp_path, {"plain.zed": text}))
    assert not read.imports and read.texts == {str(tmp_path / "plain.zed"): text}
    assert read.compile().digest == compile_schema(text).digest


@pytest.mark.parametrize("files, expected", [
    ({"root.zed": 'use import\nimport "missing.zed"\n'},
     [("root.zed", 2, 8, "SchemaImportError", "imported file `{dir}/missing.zed` not found")]),
    ({"root.zed": 'use import\nimport "sub/a.zed"\n', "sub/a.zed": 'use import\nimport "../b.zed"\n', "b.zed": ""},
     [("a.zed", 2, 8, "SchemaImportError", "import path `../b.zed` contains `..`; imported files must stay inside "
       "the folder of the file that imports them (as zed requires)")]),
    ({"root.zed": 'use import\nimport "/etc/hosts"\n'},
     [("root.zed", 2, 8, "SchemaImportError", "import path `/etc/hosts` is absolute; write it relative to this file")]),
    ({"root.zed": 'use import\nimport "a.zed"\ndefinition user {}\n', "a.zed": 'use import\nimport "b.zed"\n',
      "b.zed": 'use import\nimport "root.zed"\n'},
     [("b.zed", 2, 8, "SchemaImportError", "import cycle: `{dir}/root.zed` imports `{dir}/a.zed` imports "
       "`{dir}/b.zed` imports `{dir}/root.zed`")]),
    ({"root.zed": 'use import\nimport "root.zed"\n'},
     [("root.zed", 2, 8, "SchemaImportError", "import cycle: `{dir}/root.zed` imports `{dir}/root.zed`")]),
    ({"root.zed": 'import "a.zed"\n', "a.zed": "definition user {}\n"},
     [("root.zed", 1, 1, "UseFlagError", "`import` needs `use import` at the top of this file")]),
    ({"root.zed": 'use import\nimport "a.zed"\n', "a.zed": "definition user {}\nuse self\n"},
     [("a.zed", 2, 1, "UseFlagError", "`use self` must come before any definition or caveat")]),
    ({"root.zed": 'use import\nimport "a.zed"\nimport "b.zed"\n', "a.zed": "definition user {\n",
      "b.zed": "definition doc {\n  relation owner user\n}\n"},
     [("a.zed", 1, 17, "DslSyntaxError", "`{` is never closed: the file ends before its `}`"),
      ("b.zed", 2, 18, "DslSyntaxError", "unexpected name `user`; expected `:`")]),
    ({"root.zed": 'use import\nimport "a.zed"\n\ndefinition user {}\n', "a.zed": "\n\ndefinition user {}\n"},
     [("root.zed", 4, 12, "DuplicateNameError", "the name `user` is already used by the definition at "
       "{dir}/a.zed:3")]),
    ({"root.zed": 'use import\nuse partial\nimport "a.zed"\npartial p {\n relation user: user\n}\n',
      "a.zed": "use partial\npartial p {\n relation owner: user\n}\n"},
     [("root.zed", 4, 9, "DuplicateNameError", "the name `p` is already used by the partial at {dir}/a.zed:2")]),
    ({"root.zed": 'use import\nuse expiration\nimport "a.zed"\ndefinition user {}\n',
      "a.zed": "definition doc {\n  relation viewer: user with expiration\n}\n"},
     [("a.zed", 2, 30, "UseFlagError", "`with expiration` needs `use expiration` at the top of this file (in a "
       "composed schema, each file enables the flags it uses)")]),
])
def test_import_errors_are_located_in_their_file(tmp_path: Path, files: dict[str, str],
                                                 expected: list[tuple[str, int, int, str, str]]) -> None:
    exc = _read_error(_files(tmp_path, files))
    got = [(os.path.basename(e.filename or ""), e.line, e.column, type(e).__name__, e.message) for e in exc.errors]
    assert got == [(f, ln, col, cls, msg.replace("{dir}", str(tmp_path))) for f, ln, col, cls, msg in expected]
    for e in exc.errors:  # the offending line is shown from the file the error is in
        assert Path(e.filename or "").read_text().splitlines()[e.line - 1] in e.render()


def test_a_symbolic_link_out_of_the_root_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.zed").write_text("definition secret {}\n")
    root = _files(tmp_path / "schema", {"root.zed": 'use import\nimport "link.zed"\n'})
    (tmp_path / "schema" / "link.zed").symlink_to(tmp_path / "outside.zed")
    exc = _read_error(root)
    assert _errors(exc) == [("root.zed", 2, 8, "SchemaImportError")]
    assert "leads outside" in exc.message


def test_compile_errors_point_into_the_imported_files(tmp_path: Path) -> None:
    """An unknown type in a partial, a CEL error in a caveat, a member of a partial spliced twice: each in its file."""
    root = _files(tmp_path, {
        "root.zed": 'use import\nuse partial\n\nimport "lib/caveats.zed"\nimport "lib/partials.zed"\n\n'
                    "definition user {}\n\ndefinition document {\n    ...owned\n    relation viewer: usr\n}\n",
        "lib/caveats.zed": "\ncaveat adult(age int) {\n    age >=\n}\n",
        "lib/partials.zed": "use partial\n\npartial owned {\n    relation owner: user | tem\n}\n",
    })
    exc = _read_error(root)
    assert [(os.path.relpath(e.filename or "", tmp_path), e.line, e.column, type(e).__name__) for e in exc.errors] == [
        ("root.zed", 11, 22, "UnknownTypeError"),
        ("lib/caveats.zed", 3, 11, "CaveatError"),
        ("lib/partials.zed", 4, 28, "UnknownTypeError"),
    ]
    assert "    4 |     relation owner: user | tem" in exc.errors[2].render()
    assert isinstance(exc.errors[2], UnknownTypeError) and "`document`" in exc.errors[2].message


def test_warnings_name_their_file(tmp_path: Path) -> None:
    root = _files(tmp_path, {
        "root.zed": 'use import\nimport "a.zed"\n\ndefinition user {}\n',
        "a.zed": "definition document {\n    relation viewer: user\n    permission view_document = viewer\n}\n",
    })
    _, warnings = read_schema_files(root).lint()
    assert [(os.path.basename(f), w.span.line, w.span.column) for f, w in warnings] == [("a.zed", 3, 5)]


def test_reading_errors_come_in_file_order_and_stop_before_flattening(tmp_path: Path) -> None:
    root = _files(tmp_path, {
        "root.zed": 'use import\nuse partial\nimport "a.zed"\nimport "gone.zed"\n'
                    "definition doc {\n  ...unknown\n}\n",
        "a.zed": "definition user {\n  relation owner user\n}\n",
    })
    exc = _read_error(root)
    assert _errors(exc) == [("root.zed", 4, 8, "SchemaImportError"), ("a.zed", 2, 18, "DslSyntaxError")]
    assert not any(isinstance(e, (PartialError, DuplicateNameError, UseFlagError)) for e in exc.errors)


def test_the_docs_example_files_are_the_ones_the_page_shows() -> None:
    page = (REPO / "docs" / "composable-schemas.md").read_text()
    shown = re.findall(r"^`(examples/composable/[^`]+)`:\n\n```zed\n(.*?)```", page, re.DOTALL | re.MULTILINE)
    assert len(shown) == 3
    for path, text in shown:
        assert (REPO / path).read_text() == text, path
    read = read_schema_files(REPO / "examples" / "composable" / "root.zed")
    assert sorted(read.compile().definitions) == ["document", "folder", "group", "user"]
