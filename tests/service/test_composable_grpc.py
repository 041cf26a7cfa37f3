"""Composable schemas through gRPC: schema text has no files, so an `import` is refused by name; partials are taken,
as SpiceDB's WriteSchema takes them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from headwater.dsl import errors as dsl_errors
from headwater.engine.service.server import HeadwaterServer

from .conftest import client_for


def test_an_import_is_refused_and_partials_are_taken(make_server: Callable[..., HeadwaterServer]) -> None:
    with client_for(make_server()) as client:
        with pytest.raises(dsl_errors.SchemaImportError) as e:
            client.write_schema('use import\nimport "subjects.zed"\n\ndefinition user {}\n')
        assert e.value.code == "INVALID_ARGUMENT"
        assert "line 2, column 1" in str(e.value) and "`import` needs files" in str(e.value)
        assert "unexpected name" not in str(e.value)
        client.write_schema("use partial\npartial owned {\n  relation owner: user\n}\ndefinition user {}\n"
                            "definition doc {\n  ...owned\n}\n")
        assert sorted(client.schema().definitions["doc"].relations) == ["owner"]
