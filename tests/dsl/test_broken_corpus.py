"""Golden tests: a corpus of broken schemas, each with the exact errors the compiler must report.

Each ``cases/broken/<name>.zed`` holds one realistic mistake. ``<name>.expected``
holds one line per error, in the order of ``exc.errors``::

    LINE:COLUMN ErrorClassName: message

(a newline inside a message is written as ``\\n``). ``cases/spicedb_verdicts.txt``
records what SpiceDB itself says about each file, for reviewers.

Regenerate the expectations with ``pytest tests/dsl/test_broken_corpus.py --update-golden``
and read the diff before committing it.

``KNOWN_GAPS`` lists cases the compiler gets wrong today (strict xfail: the test
fails once the compiler is fixed, as a reminder to drop the entry). Their
``.expected`` files are written by hand and describe the error we want.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.dsl import DslError, compile_schema

CASES_DIR = Path(__file__).resolve().parent / "cases" / "broken"
VERDICTS = CASES_DIR.parent / "spicedb_verdicts.txt"
CASES = sorted(CASES_DIR.glob("*.zed"))
MIN_CASES = 60

# Schemas SpiceDB rejects but the compiler accepts (strict xfail: remove the entry when fixed).
KNOWN_GAPS: dict[str, str] = {}
# Errors whose render() cannot show the offending line.
KNOWN_RENDER_GAPS: dict[str, str] = {}


def _params(gaps: dict[str, str]) -> list:
    return [
        pytest.param(p, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=gaps[p.name])] if p.name in gaps
                     else [])
        for p in CASES
    ]


def _error_lines(exc: DslError) -> list[str]:
    return [
        f"{e.line}:{e.column} {type(e).__name__}: {e.message.replace(chr(10), chr(92) + 'n')}"
        for e in exc.errors
    ]


def _update_golden(request: pytest.FixtureRequest) -> bool:
    try:
        return bool(request.config.getoption("--update-golden"))
    except ValueError:  # option not registered (tests/dsl/conftest.py not loaded)
        return False


def _compile_error(path: Path) -> DslError:
    text = path.read_text(encoding="utf-8")
    with pytest.raises(DslError) as info:
        compile_schema(text, filename=path.name)
    return info.value


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} broken cases in {CASES_DIR}"


def test_every_expected_file_has_a_case() -> None:
    orphans = sorted(p.name for p in CASES_DIR.glob("*.expected") if not p.with_suffix(".zed").exists())
    assert not orphans, f".expected files without a .zed case: {orphans}"


def test_every_case_has_a_spicedb_verdict() -> None:
    lines = VERDICTS.read_text(encoding="utf-8").splitlines()
    named = {line.split(":", 1)[0] for line in lines if line.strip() and not line.startswith("#")}
    missing = sorted(p.stem for p in CASES if p.stem not in named)
    assert not missing, f"cases missing from {VERDICTS.name}: {missing}"


@pytest.mark.parametrize("path", _params(KNOWN_GAPS))
def test_broken_case(path: Path, request: pytest.FixtureRequest) -> None:
    exc = _compile_error(path)
    assert exc is exc.errors[0], "the error raised must be the first of exc.errors"
    got = _error_lines(exc)
    expected_path = path.with_suffix(".expected")
    if _update_golden(request):
        expected_path.write_text("\n".join(got) + "\n", encoding="utf-8")
        return
    assert expected_path.exists(), f"{expected_path.name} is missing; run with --update-golden and review it"
    assert got == expected_path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("path", _params({**KNOWN_GAPS, **KNOWN_RENDER_GAPS}))
def test_broken_case_renders_line_and_caret(path: Path) -> None:
    exc = _compile_error(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    for e in exc.errors:
        rendered = e.render().splitlines()
        assert rendered[0] == f"{path.name}:{e.line}:{e.column}: {e.message.splitlines()[0]}"
        assert 1 <= e.line <= len(lines), f"{e.line}:{e.column} is not a line of {path.name}:\n{e.render()}"
        gutter = f"{e.line:>5} | "
        assert rendered[-2] == gutter + lines[e.line - 1].replace("\t", " "), e.render()
        caret = rendered[-1]
        assert caret.strip(" |").startswith("^"), e.render()
        assert caret.index("^") == len(gutter) + e.column - 1, e.render()
