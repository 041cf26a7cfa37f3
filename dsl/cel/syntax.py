"""Reading a compiled caveat expression's syntax tree: the names it reads, and what ``ipaddress`` refuses.

cel-expr-python hands out the tree only as a serialized ``google.protobuf.Any``
holding a ``cel.expr.ParsedExpr`` or ``cel.expr.CheckedExpr``; ``read_tree``
parses it with the generated classes of ``pb/cel_expr.proto`` (the parts of
cel-spec's ``syntax.proto`` and ``checked.proto`` read here, same field numbers).

Example::

    >>> sorted(referenced_names("a > 1 && [1, 2].exists(x, x == b)"))
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from google.protobuf import any_pb2

from ..errors import CelError
from .environment import IPADDRESS_MESSAGE, PARSE_ENV, cel_error_from
from .pb.cel_expr_pb2 import CheckedExpr, Expr, ParsedExpr

__all__ = ["SyntaxTree", "validate_ipaddress_use", "free_identifiers", "read_tree", "referenced_names"]

_CHECKED_TYPE_URL: Final = "type.googleapis.com/cel.expr.CheckedExpr"

# Identifiers that name CEL's built-in types; `type(x) == int` does not read a variable `int`.
_BUILTIN_TYPE_IDENTS: Final = frozenset({
    "bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type", "uint",
    "optional_type",
})


@dataclass(frozen=True, slots=True)
class SyntaxTree:
    """A compiled expression's tree, where each node stands, and (once checked) the message types of nodes."""

    expr: Expr
    positions: Mapping[int, int]        # node id -> code-point offset in the expression
    message_types: Mapping[int, str]    # node id -> message type name (checked trees only)


def read_tree(serialized: bytes) -> SyntaxTree:
    """Parse ``Expression.serialize()`` (an ``Any`` holding a ``ParsedExpr`` or a ``CheckedExpr``)."""
    wrapper = any_pb2.Any.FromString(serialized)
    if wrapper.type_url == _CHECKED_TYPE_URL:
        checked = CheckedExpr.FromString(wrapper.value)
        message_types = {node: t.message_type for node, t in checked.type_map.items() if t.message_type}
        return SyntaxTree(checked.expr, dict(checked.source_info.positions), message_types)
    parsed = ParsedExpr.FromString(wrapper.value)
    return SyntaxTree(parsed.expr, dict(parsed.source_info.positions), {})


def _expr(serialized: bytes) -> Expr:
    """A sub-expression (declared ``bytes`` in ``pb/cel_expr.proto``), parsed now that it is read."""
    return Expr.FromString(serialized)


def _operands(node: Expr) -> Iterator[Expr]:
    """The sub-expressions of a node that is not a comprehension (whose variables scope its parts)."""
    kind = node.WhichOneof("expr_kind")
    if kind == "select_expr":
        if node.select_expr.operand:
            yield _expr(node.select_expr.operand)
    elif kind == "call_expr":
        if node.call_expr.target:
            yield _expr(node.call_expr.target)
        yield from map(_expr, node.call_expr.args)
    elif kind == "list_expr":
        yield from map(_expr, node.list_expr.elements)
    elif kind == "struct_expr":
        for entry in node.struct_expr.entries:
            if entry.map_key:
                yield _expr(entry.map_key)
            yield _expr(entry.value)


def free_identifiers(root: Expr) -> set[str]:
    """The identifiers ``root`` reads that are not bound by an enclosing comprehension."""
    out: set[str] = set()
    stack: list[tuple[Expr, frozenset[str]]] = [(root, frozenset())]
    while stack:
        node, bound = stack.pop()
        kind = node.WhichOneof("expr_kind")
        if kind == "ident_expr":
            if node.ident_expr.name not in bound:
                out.add(node.ident_expr.name)
        elif kind == "comprehension_expr":
            c = node.comprehension_expr
            inner = bound | {v for v in (c.iter_var, c.iter_var2) if v} | {c.accu_var}
            stack += [(_expr(c.iter_range), bound), (_expr(c.accu_init), bound), (_expr(c.loop_condition), inner),
                      (_expr(c.loop_step), inner), (_expr(c.result), bound | {c.accu_var})]
        else:
            stack.extend((operand, bound) for operand in _operands(node))
    return out


def _position(expression: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a code-point offset in ``expression``."""
    offset = max(0, min(offset, len(expression)))
    line = expression.count("\n", 0, offset) + 1
    return line, offset - (expression.rfind("\n", 0, offset) + 1) + 1


def validate_ipaddress_use(tree: SyntaxTree, expression: str) -> None:
    """Reject what SpiceDB's opaque ``IPAddress`` does not have: fields and literal construction."""
    types = tree.message_types
    if IPADDRESS_MESSAGE not in types.values():
        return
    stack = [tree.expr]
    while stack:
        node = stack.pop()
        kind = node.WhichOneof("expr_kind")
        operand = node.select_expr.operand if kind == "select_expr" else b""
        if operand and types.get(_expr(operand).id) == IPADDRESS_MESSAGE:
            line, column = _position(expression, tree.positions.get(node.id, 0))
            raise CelError(f"type '{IPADDRESS_MESSAGE}' does not support field selection", line, column)
        if kind == "struct_expr" and types.get(node.id) == IPADDRESS_MESSAGE:
            line, column = _position(expression, tree.positions.get(node.id, 0))
            raise CelError(f"undeclared reference to '{node.struct_expr.message_name}'", line, column)
        if kind == "comprehension_expr":
            c = node.comprehension_expr
            stack.extend(map(_expr, (c.iter_range, c.accu_init, c.loop_condition, c.loop_step, c.result)))
        else:
            stack.extend(_operands(node))


def referenced_names(expression: str, declared: Iterable[str] = ()) -> frozenset[str]:
    """Top-level identifiers the expression reads (not macro loop variables, not field selections).

    Built-in type names used as values (``int`` in ``type(x) == int``) are not
    counted, unless ``declared`` (the caveat's parameters) declares one as a
    variable (a parameter named ``map`` is read by ``map > 1``).  Raises
    ``CelError`` on a syntax error.
    """
    try:
        parsed = PARSE_ENV.compile(expression, disable_check=True)  # type: ignore[attr-defined]
    except Exception as exc:  # cel-expr-python reports every compile problem as RuntimeError
        raise cel_error_from(exc) from None
    out = free_identifiers(read_tree(parsed.serialize()).expr)
    return frozenset(out - (_BUILTIN_TYPE_IDENTS - frozenset(declared)))
