"""Compiling a caveat: type-check its expression against the declared parameters, requiring a ``bool``.

This reproduces what SpiceDB does with cel-go: a syntax error, an unknown
identifier or a type error is a ``CelError`` positioned within the expression,
and so is a use of ``ipaddress`` that SpiceDB's opaque type does not allow.

Example::

    >>> c = compile_caveat("adult", {"age": CelType("int")}, "age >= 18")
    >>> sorted(c.referenced)
    ['age']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from cel_expr_python import cel as _cel

from ..errors import CelError
from .environment import CelType, cel_error_from, validate_type, declared_type, new_env
from .evaluation import CompiledCaveat
from .syntax import validate_ipaddress_use, free_identifiers, read_tree

__all__ = ["compile_caveat"]

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def compile_caveat(name: str, params: Mapping[str, CelType], expression: str) -> CompiledCaveat:
    """Parse and type-check ``expression`` against the declared parameters; the result must be bool.

    Raises ``CelError`` (line and column relative to ``expression``) on syntax
    errors, unknown identifiers and type errors, and ``ValueError`` for an
    unknown parameter type or an invalid parameter name.
    """
    variables = {}
    for param, cel_type in params.items():
        if not _IDENTIFIER.fullmatch(param):
            raise ValueError(f"invalid caveat parameter name `{param}`")
        validate_type(cel_type)
        variables[param] = declared_type(cel_type)
    env = new_env(variables)
    try:
        program = env.compile(expression)  # type: ignore[attr-defined]
    except Exception as exc:  # cel-expr-python reports every compile problem as RuntimeError
        raise cel_error_from(exc) from None
    if program.return_type() != _cel.Type.BOOL:
        found = program.return_type().name().lower()
        raise CelError(f"caveat expression must result in a boolean value: found `{found}`", 1, 1)
    tree = read_tree(program.serialize())
    validate_ipaddress_use(tree, expression)
    used = free_identifiers(tree.expr)
    return CompiledCaveat(name, params, expression, program, frozenset(used & set(params)))
