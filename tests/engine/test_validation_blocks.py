"""`validation:` blocks of SpiceDB validation files: every conformance block passes through Expand; wrong
entries fail naming the file line, expected and actual; malformed entries are clear load errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.engine.cli import main
from headwater.engine.validationfile import run_validation_file, run_validation_text

from tests.conformance import CONFORMANCE, validation_files

FILES = validation_files()


@pytest.mark.conformance
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_every_validation_block_passes(path: Path) -> None:
    report = run_validation_file(path, root=CONFORMANCE)
    assert report.load_error is None, report.load_error
    assert not report.validation_failures, "\n".join(f"{v.line}: {v.message}" for v in report.validation_failures)
    assert report.ok


@pytest.mark.conformance
def test_the_blocks_are_really_checked() -> None:
    """A guard against silently checking nothing: the examples hold about 100 validation entries."""
    total = sum(len(run_validation_file(p, root=CONFORMANCE).validations) for p in FILES)
    assert total >= 95
    report = run_validation_file(CONFORMANCE / "examples" / "caveats__schema-and-data.yaml", root=CONFORMANCE)
    assert {v.actual for v in report.validations} == {
        "[user:fred] is <document:firstdoc#reader>", "[user:tom[...]] is <document:firstdoc#reader>",
        "[user:alice[...]] is <document:firstdoc#reader>"}


# ---------------------------------------------------------------- wrong entries fail, naming line/expected/actual

BASIC = """\
schema: |-
  definition user {}
  definition document {
      relation writer: user
      relation reader: user | user:* | user with on_tuesday
      relation banned: user
      permission edit = writer
      permission view = reader + edit
      permission public = reader - banned
  }
  caveat on_tuesday(day string) {
      day == "tuesday"
  }
relationships: |-
  document:firstdoc#writer@user:tom
  document:firstdoc#reader@user:fred
  document:firstdoc#reader@user:tom
  document:firstdoc#reader@user:sarah[on_tuesday]
  document:firstdoc#reader@user:*
  document:firstdoc#banned@user:banned
validation:
  document:firstdoc#view:
    - "[user:tom] is <document:firstdoc#writer>/<document:firstdoc#reader>"
    - "[user:fred] is <document:firstdoc#reader>"
    - "[user:sarah[...]] is <document:firstdoc#reader>"
    - "[user:*] is <document:firstdoc#reader>"
  document:firstdoc#public:
    - "[user:* - {user:banned}] is <document:firstdoc#reader>"
    - "[user:tom] is <document:firstdoc#reader>"
    - "[user:fred] is <document:firstdoc#reader>"
    - "[user:sarah[...]] is <document:firstdoc#reader>"
"""


def _line(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def _edit(key: str, old: str, new: str | None, *, insert: bool = False) -> tuple[str, int]:
    """BASIC with the entry ``old`` of block ``key`` replaced (or removed, or followed by ``new``); the edited line."""
    lines = BASIC.splitlines()
    i = next(j for j in range(lines.index(f"  {key}:"), len(lines)) if lines[j] == f'    - "{old}"')
    if insert:
        i += 1
        lines.insert(i, f'    - "{new}"')
    elif new is None:
        del lines[i]
    else:
        lines[i] = f'    - "{new}"'
    return "\n".join(lines) + "\n", i + 1


def _run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    path = tmp_path / "v.yaml"
    path.write_text(text)
    code = main(["validate", str(path)])
    return code, capsys.readouterr().out, path


def test_the_correct_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, path = _run(tmp_path, BASIC, capsys)
    assert code == 0, out
    assert out.strip() == f"{path}: 0 of 0 assertions passed, 8 of 8 validation entries passed, 6 relationships"


VIEW, PUBLIC = "document:firstdoc#view", "document:firstdoc#public"
FOUND = {"[user:tom] is <document:firstdoc#writer>/<document:firstdoc#reader>":
         "[user:tom] is <document:firstdoc#reader>/<document:firstdoc#writer>"}  # Expand lists relations sorted


@pytest.mark.parametrize("key, old, new, insert, problem", [
    # an extra subject listed: Expand does not find it
    (VIEW, "[user:fred] is <document:firstdoc#reader>", "[user:ghost] is <document:firstdoc#reader>", True,
     "subject user:ghost not found"),
    # a wrong relation set
    (VIEW, "[user:tom] is <document:firstdoc#writer>/<document:firstdoc#reader>",
     "[user:tom] is <document:firstdoc#writer>", False,
     "different relations: listed <document:firstdoc#writer>, found "
     "<document:firstdoc#reader>/<document:firstdoc#writer>"),
    # a caveated subject without `[...]`, an uncaveated one with it
    (VIEW, "[user:sarah[...]] is <document:firstdoc#reader>", "[user:sarah] is <document:firstdoc#reader>", False,
     "caveat mismatch: found caveated (`[...]`), listed without `[...]`"),
    (PUBLIC, "[user:fred] is <document:firstdoc#reader>", "[user:fred[...]] is <document:firstdoc#reader>", False,
     "caveat mismatch: found without a caveat, listed caveated"),
    # wrong exclusions
    (PUBLIC, "[user:* - {user:banned}] is <document:firstdoc#reader>",
     "[user:* - {user:banned, user:tom}] is <document:firstdoc#reader>", False,
     "different excluded subjects: listed {user:banned, user:tom}, found {user:banned}"),
    (PUBLIC, "[user:* - {user:banned}] is <document:firstdoc#reader>", "[user:*] is <document:firstdoc#reader>",
     False, "different excluded subjects: listed {}, found {user:banned}"),
    (VIEW, "[user:*] is <document:firstdoc#reader>", "[user:* - {user:tom}] is <document:firstdoc#reader>", False,
     "different excluded subjects: listed {user:tom}, found {}"),
    (PUBLIC, "[user:tom] is <document:firstdoc#reader>", "[user:tom - {user:x}] is <document:firstdoc#reader>",
     False, "excluded subjects listed, but user:tom is not a wildcard"),
])
def test_a_wrong_entry_fails_naming_line_expected_and_actual(key: str, old: str, new: str, insert: bool,
                                                              problem: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    text, line = _edit(key, old, new, insert=insert)
    code, out, path = _run(tmp_path, text, capsys)
    assert code == 1
    failing = [ln for ln in out.splitlines() if ln.startswith(f"{path}:{line}: validation of {key}: ")]
    assert len(failing) == 1, out
    # what Expand found for the subject, as an entry (relations sorted); nothing for a subject it does not find
    actual = "(nothing)" if insert else FOUND.get(old, old)
    assert f"expected {new}, found {actual}: {problem}" in failing[0], failing[0]
    assert f"{8 if insert else 7} of {9 if insert else 8} validation entries passed" in out


def test_a_missing_subject_is_reported_at_the_key_with_what_was_found(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = _edit(VIEW, "[user:fred] is <document:firstdoc#reader>", None)
    code, out, path = _run(tmp_path, text, capsys)
    assert code == 1
    line = _line(text, f"{VIEW}:")
    assert (f"{path}:{line}: validation of {VIEW}: expected (not listed), found "
            "[user:fred] is <document:firstdoc#reader>: subject user:fred found but not listed") in out


def test_an_empty_list_expects_no_subjects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = BASIC + "  document:other#view: []\n  document:firstdoc#edit: []\n"
    code, out, path = _run(tmp_path, text, capsys)
    assert code == 1
    assert "validation of document:firstdoc#edit: expected (not listed), found [user:tom] is " in out
    assert "document:other#view" not in out


def test_an_unknown_relation_in_a_key_is_an_error_at_the_key(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = BASIC + "  document:firstdoc#nope:\n    - \"[user:tom] is <document:firstdoc#nope>\"\n"
    code, out, path = _run(tmp_path, text, capsys)
    assert code == 1
    line = _line(text, "document:firstdoc#nope:")
    assert f"{path}:{line}: validation of document:firstdoc#nope: error: relation/permission `nope` not found" in out


def test_json_lists_every_validation_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, line = _edit(VIEW, "[user:fred] is <document:firstdoc#reader>", "[user:fred] is <document:firstdoc#writer>")
    path = tmp_path / "v.yaml"
    path.write_text(text)
    assert main(["validate", "--json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)[0]
    assert report["ok"] is False and len(report["validations"]) == 8
    bad = [v for v in report["validations"] if not v["passed"]]
    assert bad == [{"file": str(path), "line": line, "resource": VIEW,
                    "expected": "[user:fred] is <document:firstdoc#writer>",
                    "actual": "[user:fred] is <document:firstdoc#reader>", "passed": False,
                    "problems": ["different relations: listed <document:firstdoc#writer>, found "
                                 "<document:firstdoc#reader>"], "error": None}]


def test_report_ok_requires_the_validation_blocks() -> None:
    text, _ = _edit(VIEW, "[user:fred] is <document:firstdoc#reader>", "[user:fredd] is <document:firstdoc#reader>")
    report = run_validation_text(text)
    assert report.load_error is None and not report.failures
    assert not report.ok and len(report.validation_failures) == 2  # fredd not found, fred not listed


# ---------------------------------------------------------------- malformed entries are load errors


@pytest.mark.parametrize("entry, fragment", [
    ("user:tom is <document:firstdoc#reader>", "malformed validation entry"),
    ("[user:tom] <document:firstdoc#reader>", "malformed validation entry"),
    ("[user:tom] is document:firstdoc#reader", "malformed validation entry"),
    ("[user:tom] is <document:firstdoc#reader>, <document:firstdoc#writer>", "malformed validation entry"),
    ("[user tom] is <document:firstdoc#reader>", "invalid subject `[user tom]`"),
    ("[user:tom[..]] is <document:firstdoc#reader>", "invalid subject `[user:tom[..]]`"),
    ("[user:* - {user:a, }] is <document:firstdoc#reader>", "invalid subject in"),
    ("[User:tom] is <document:firstdoc#reader>", "invalid subject type 'User'"),
    ("[user:tom] is <document:firstdoc>", "invalid resource in"),
    ("[user:tom] is <document#reader>", "invalid resource in"),
])
def test_a_malformed_entry_is_a_clear_load_error(entry: str, fragment: str) -> None:
    text = BASIC.replace('"[user:fred] is <document:firstdoc#reader>"', json.dumps(entry), 1)
    report = run_validation_text(text, path="v.yaml")
    assert report.load_error is not None
    assert report.load_error.line == _line(text, json.dumps(entry)), str(report.load_error)
    assert fragment in str(report.load_error)
    assert str(report.load_error).startswith(f"v.yaml:{report.load_error.line}: ")


@pytest.mark.parametrize("block, line_fragment, fragment", [
    ("validation: [a, b]\n", "validation:", "`validation` must map `resource#relation` keys"),
    ("validation:\n  document:firstdoc:\n    - \"[user:tom] is <document:firstdoc#reader>\"\n",
     "document:firstdoc:", "invalid validation key `document:firstdoc`"),
    ("validation:\n  document:firstdoc#view: \"[user:tom] is <document:firstdoc#reader>\"\n",
     "document:firstdoc#view:", "must be a list"),
    ("validation:\n  document:firstdoc#view:\n    - {a: b}\n", "{a: b}", "must be a string"),
])
def test_a_malformed_block_is_a_clear_load_error(block: str, line_fragment: str, fragment: str) -> None:
    text = BASIC.split("validation:")[0] + block
    report = run_validation_text(text, path="v.yaml")
    assert report.load_error is not None
    assert report.load_error.line == _line(text, line_fragment), str(report.load_error)
    assert fragment in str(report.load_error)


def test_empty_and_null_blocks_hold_no_entries() -> None:
    for block in ("validation:\n", "validation: null\n", "validation: {}\n", "validation:\n  document:x#view:\n"):
        report = run_validation_text(BASIC.split("validation:")[0] + block)
        assert report.ok, (block, report.load_error)
    report = run_validation_text(BASIC.split("validation:")[0] + "validation:\n  document:x#view:\n")
    assert report.validations == []
