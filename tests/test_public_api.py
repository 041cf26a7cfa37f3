"""Each public package lists its API in a sorted, complete `__all__`."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = ["headwater.dsl", "headwater.dsl.cel", "headwater.engine"]


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
    """Every module of headwater.dsl (generated code aside): its docstring examples run as written."""
    import doctest
    import importlib
    import pkgutil

    import headwater.dsl

    names = ["headwater.dsl"] + sorted(m.name for m in pkgutil.walk_packages(headwater.dsl.__path__, "headwater.dsl.")
                                       if ".pb" not in m.name)
    for required in ("headwater.dsl.ast", "headwater.dsl.compiler", "headwater.dsl.format", "headwater.dsl.parser",
                     "headwater.dsl.schema"):
        assert required in names
    for name in names:
        mod = importlib.import_module(name)
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"doctest failed in {mod.__name__}"
