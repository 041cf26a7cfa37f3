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

from .composable import SchemaFiles, compile_schema, lint_schema, read_schema_files
from .compiler.names import caveat_name_problem
from .errors import DslError, DslSyntaxError, SchemaError, SchemaLimitError
from .format import format_expression, format_schema
from .limits import SchemaLimits
from .parser import parse_schema
from .schema import Schema

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
