"""Headwater's policy language: SpiceDB's schema language, parsed, checked and formatted.

Example::

    >>> from headwater.dsl import compile_schema
    >>> schema = compile_schema('''
    ... definition user {}
    ... definition document {
    ...     relation viewer: user
    ...     permission view = viewer
    ... }''')
    >>> sorted(schema.definitions)
    ['document', 'user']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time each name's module is imported on first use
    from .caveat_names import caveat_name_problem
    from .composable import SchemaFiles, compile_schema, lint_schema, read_schema_files
    from .errors import DslError, DslSyntaxError, SchemaError, SchemaLimitError
    from .format import format_expression, format_schema
    from .limits import SchemaLimits
    from .parser import parse_schema
    from .schema import Schema

__getattr__, __dir__ = _lazy_exports(__name__, {
    "caveat_names": ("caveat_name_problem",),
    "composable": ("SchemaFiles", "compile_schema", "lint_schema", "read_schema_files"),
    "errors": ("DslError", "DslSyntaxError", "SchemaError", "SchemaLimitError"),
    "format": ("format_expression", "format_schema"),
    "limits": ("SchemaLimits",),
    "parser": ("parse_schema",),
    "schema": ("Schema",),
})

__all__ = [
    "DslError",
    "DslSyntaxError",
    "Schema",
    "SchemaError",
    "SchemaFiles",
    "SchemaLimitError",
    "SchemaLimits",
    "caveat_name_problem",
    "compile_schema",
    "format_expression",
    "format_schema",
    "lint_schema",
    "parse_schema",
    "read_schema_files",
]
