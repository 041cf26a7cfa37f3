"""Compile and evaluate SpiceDB caveat expressions (CEL).

This package is the only home of the CEL library (``cel-expr-python``, Google's
Python binding of cel-cpp; see ``docs/decisions/cel.md``). It reproduces what
SpiceDB does with cel-go, one concern a module:

* ``environment``: the declared parameter types (``CelType``) and the CEL
  environment they become (``uint`` is an ``int`` to CEL, ``map<T>`` a
  ``map(string, T)``, ``ipaddress`` the object type ``IPAddress`` with
  ``in_cidr(string) -> bool``; maps also get ``isSubtreeOf(map) -> bool``;
  optional syntax such as ``m[?k]`` is enabled).
* ``compile``: ``compile_caveat`` type-checks an expression against the
  declared parameters and requires a ``bool`` result.
* ``syntax``: reads the compiled syntax tree (the parameters an expression
  reads, ``referenced_names``, what ``ipaddress`` refuses) through the
  generated classes in ``pb/``.
* ``conversion``: JSON-like context values to the declared types, the way
  SpiceDB converts ``google.protobuf.Struct`` values.
* ``evaluation``: ``CompiledCaveat.evaluate``; missing parameters make the
  result conditional unless the expression is decided without them.

Its errors (``CelError``, ``CaveatContextError``, ``CelEvaluationError``) are
subclasses of ``DslError``, defined with the rest of the tree in ``dsl/errors.py``.

Example::

    >>> c = compile_caveat("ip_allowlist", {"user_ip": CelType("ipaddress"),
    ...                                     "cidrs": CelType("list", (CelType("string"),))},
    ...                    "cidrs.exists(c, user_ip.in_cidr(c))")
    >>> c.evaluate({"user_ip": "10.0.0.7", "cidrs": ["10.0.0.0/8"]})
    CaveatResult(value=True, missing=())
    >>> c.evaluate({"cidrs": ["10.0.0.0/8"]})
    CaveatResult(value=None, missing=('user_ip',))
"""

from ..errors import CaveatContextError, CelError, CelEvaluationError
from .compile import compile_caveat
from .environment import KNOWN_TYPES, CelType
from .evaluation import CaveatResult, CompiledCaveat
from .syntax import referenced_names

__all__ = [
    "CaveatContextError",
    "CaveatResult",
    "CelError",
    "CelEvaluationError",
    "CelType",
    "CompiledCaveat",
    "KNOWN_TYPES",
    "compile_caveat",
    "referenced_names",
]
