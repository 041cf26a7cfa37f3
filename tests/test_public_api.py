"""Each public package lists its API in a sorted, complete `__all__`."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = ["headwater.dsl", "headwater.engine"]


@pytest.mark.parametrize("module_name", PUBLIC)
def test_all_is_sorted_and_complete(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} has no __all__"
    assert list(exported) == sorted(exported), f"{module_name}.__all__ is not sorted"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names {name}, which does not exist"
    public = {n for n, v in vars(module).items() if not n.startswith("_") and not getattr(v, "__name__", "")
              .startswith(module_name + ".") and getattr(v, "__module__", "").startswith("headwater")}
    missing = public - set(exported)
    assert not missing, f"{module_name} defines public names missing from __all__: {sorted(missing)}"


def test_dsl_docstring_example_runs() -> None:
    import doctest

    import headwater.dsl
    import headwater.dsl.ast
    import headwater.dsl.compiler
    import headwater.dsl.format
    import headwater.dsl.parser
    import headwater.dsl.schema

    for mod in (headwater.dsl, headwater.dsl.ast, headwater.dsl.compiler, headwater.dsl.format,
                headwater.dsl.parser, headwater.dsl.schema):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"doctest failed in {mod.__name__}"
