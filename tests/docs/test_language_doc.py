"""Every schema example in docs/language.md compiles, and every broken one fails exactly as shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headwater.dsl import DslError, compile_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "language.md"
FENCE = re.compile(r"```(zed broken|zed|text)\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str, str | None]]:
    found = FENCE.findall(DOC.read_text())
    out = []
    for i, (kind, body) in enumerate(found):
        if kind == "zed":
            out.append(("ok", body, None))
        elif kind == "zed broken":
            assert i + 1 < len(found) and found[i + 1][0] == "text", "a broken example needs its error text"
            out.append(("broken", body, found[i + 1][1]))
    return out


BLOCKS = _blocks()


def test_the_page_has_examples() -> None:
    assert sum(1 for k, _, _ in BLOCKS if k == "ok") >= 5
    assert sum(1 for k, _, _ in BLOCKS if k == "broken") >= 3


@pytest.mark.parametrize("kind, body, expected", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example(kind: str, body: str, expected: str | None) -> None:
    if kind == "ok":
        compile_schema(body)
        return
    with pytest.raises(DslError) as e:
        compile_schema(body)
    assert e.value.render().strip() == (expected or "").strip()
