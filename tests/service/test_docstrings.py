"""The docstring examples of the service modules run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["auth", "convert", "errors", "server", "servicer", "supervisor", "testing", "authzed.convert", "authzed.trace",
           "observe", "http.app", "http.listener"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"headwater.engine.service.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
