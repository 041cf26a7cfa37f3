"""Every assertion of SpiceDB's validation files passes through `headwater validate` (issue: check engine).

The files are SpiceDB's, kept in tests/conformance/data. `validation:` blocks are checked through Expand by
tests/engine/test_validation_blocks.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from headwater.engine.cli import main
from headwater.engine.validationfile import run_validation_file

from tests.conformance import CONFORMANCE, validation_files

pytestmark = pytest.mark.conformance
# Files the engine cannot handle yet, with the reason. The issue is not resolved while this is non-empty.
NOT_YET: dict[str, str] = {}


FILES = validation_files()


def test_conformance_data_present() -> None:
    assert len(FILES) >= 47


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_every_assertion_holds(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if path.name in NOT_YET:
        pytest.xfail(NOT_YET[path.name])
    code = main(["validate", "--json", "--root", str(CONFORMANCE), str(path)])
    report = json.loads(capsys.readouterr().out)[0]
    failures = [a for a in report["assertions"] if not a["passed"]]
    assert report["load_error"] is None
    assert not failures, json.dumps(failures, indent=1)
    assert code == 0


def test_self_file_with_use_self(tmp_path: Path) -> None:
    """`self.yaml.skip` is skipped upstream only for a harness limitation; Headwater runs it."""
    src = CONFORMANCE / "testconfigs" / "self.yaml.skip"
    dst = tmp_path / "self.yaml"
    shutil.copy(src, dst)
    report = run_validation_file(dst)
    assert report.ok and len(report.assertions) == 4


def test_all_assertions_count() -> None:
    """A guard against silently loading nothing: the suite has well over 200 assertions."""
    total = sum(len(run_validation_file(p, root=CONFORMANCE).assertions) for p in FILES)
    assert total >= 230
