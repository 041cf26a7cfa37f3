"""Evaluating a compiled caveat against request context: true, false, or conditional on missing parameters.

cel-expr-python has no partial evaluation: parameters absent from the context are
left unbound, so reading one is an error that ``&&`` and ``||`` absorb when the
outcome does not depend on it. An undecided result names the absent parameters
the expression references, as SpiceDB's partial evaluation does.

Example::

    >>> from headwater.dsl.cel import CelType, compile_caveat
    >>> c = compile_caveat("small", {"n": CelType("int")}, "n < 10")
    >>> c.evaluate({"n": 3}), c.evaluate({})
    (CaveatResult(value=True, missing=()), CaveatResult(value=None, missing=('n',)))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ..errors import CaveatContextError, CelEvaluationError
from .conversion import ConversionError, converter_for
from .environment import CelType, strip_status_code

__all__ = ["CaveatResult", "CompiledCaveat"]


@dataclass(frozen=True, slots=True)
class CaveatResult:
    """The outcome of a caveat evaluation: true, false, or conditional (``value is None``)."""

    value: bool | None
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.value is not None and self.missing:
            raise ValueError("a decided CaveatResult cannot list missing parameters")


_TRUE: Final = CaveatResult(True, ())
_FALSE: Final = CaveatResult(False, ())

_MISSING: Final = object()


class CompiledCaveat:
    """A type-checked caveat expression, compiled once and evaluated many times.

    Attributes: ``name``, ``params`` (read-only mapping of parameter name to
    ``CelType``), ``expression`` (the source text) and ``referenced`` (the
    parameters the expression reads).  Build it with ``compile_caveat``.
    """

    __slots__ = ("name", "params", "expression", "referenced", "_program", "_converters", "_referenced_sorted")

    name: str
    params: Mapping[str, CelType]
    expression: str
    referenced: frozenset[str]

    def __init__(self, name: str, params: Mapping[str, CelType], expression: str, program: object,
                 referenced: frozenset[str]) -> None:
        self.name = name
        self.params = MappingProxyType(dict(params))
        self.expression = expression
        self.referenced = referenced
        self._program = program
        self._converters = tuple((p, t, converter_for(t)) for p, t in self.params.items())
        self._referenced_sorted = tuple(sorted(referenced))

    def __repr__(self) -> str:
        params = ", ".join(f"{p} {t}" for p, t in self.params.items())
        return f"CompiledCaveat({self.name}({params}) {{ {self.expression.strip()} }})"

    def validate_context(self, context: Mapping[str, object]) -> None:
        """Refuse context that names an unknown parameter or holds a value of the wrong type (as SpiceDB
        does when a relationship stores caveat context); raises ``CaveatContextError``."""
        for key in context:
            if key not in self.params:
                raise CaveatContextError(self.name, str(key), CelType("any"), "",
                                         message=f"caveat `{self.name}` has no parameter `{key}`")
        for param, cel_type, convert in self._converters:
            if param in context:
                try:
                    convert(context[param])
                except ConversionError as exc:
                    raise CaveatContextError(self.name, param, cel_type, str(exc)) from None

    def evaluate(self, context: Mapping[str, object]) -> CaveatResult:
        """Evaluate against JSON-like ``context``: true, false, or conditional with the missing parameters.

        Raises ``CaveatContextError`` when a value does not fit its parameter's
        type and ``CelEvaluationError`` on a runtime error with every
        referenced parameter present.
        """
        data: dict[str, object] = {}
        for param, cel_type, convert in self._converters:
            value = context.get(param, _MISSING)
            if value is _MISSING:
                continue
            try:
                data[param] = convert(value)
            except ConversionError as exc:
                raise CaveatContextError(self.name, param, cel_type, str(exc)) from None
        try:
            result = self._program.eval(data=data)  # type: ignore[attr-defined]
        except Exception as exc:  # a value the CEL runtime refused to take in
            raise CelEvaluationError(self.name, str(exc)) from None
        value = result.value()
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        missing = tuple(p for p in self._referenced_sorted if p not in data)
        if missing:
            # cel-go's partial evaluation turns absent parameters into "unknown", which
            # wins over errors in `&&`/`||`; here they surface as errors that `&&`/`||`
            # absorbed when the outcome did not depend on them.
            return CaveatResult(None, missing)
        raise CelEvaluationError(self.name, strip_status_code(str(value)))
