"""Lazy package exports (PEP 562): a package names its API in ``__all__`` but imports a name's module on first use.

``headwater.engine``, ``headwater.engine.audit`` and ``headwater.dsl`` export many names whose modules pull in
heavy libraries (lark, CEL, sqlite3, psycopg). Importing any submodule runs the package's ``__init__`` first, so an
eager ``__init__`` made ``import headwater.engine.errors`` (and so the gRPC client) load all of them. With
:func:`lazy_exports` the ``__init__`` is a table; ``from headwater.engine import Engine`` still works, and only then
imports ``headwater.engine.api``. A name, once imported, is stored in the package (the next access is a plain one).

Example::

    >>> import sys
    >>> getattr_, dir_ = lazy_exports("json", {"decoder": ("JSONDecodeError",)})
    >>> getattr_("JSONDecodeError").__name__
    'JSONDecodeError'
    >>> "JSONDecodeError" in dir_()
    True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]]) -> tuple[Callable[[str], Any],
                                                                               Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``homes`` (submodule relative to ``package`` -> the names it
    exports). A name not in the table that is a submodule is imported as one (``headwater.engine.api`` was an
    attribute of the eager package; it stays one)."""
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home_of.get(name)
        if module is None:
            if name.startswith("__"):
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home_of))

    return __getattr__, __dir__
