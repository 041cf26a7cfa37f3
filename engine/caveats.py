"""The one place caveats are evaluated: whether a caveated relationship holds under a request's context.

Context stored on the relationship wins over the request's; a parameter that is
needed but absent makes the answer UNKNOWN (with the missing names), which the
evaluator combines with three-valued logic. Check and Expand both call it.

Example::

    >>> from headwater.dsl import compile_schema
    >>> from headwater.engine.store import Row
    >>> schema = compile_schema('caveat adult(age int) { age >= 18 }\\ndefinition user {}\\n'
    ...                         'definition doc {\\n relation viewer: user with adult\\n}')
    >>> row = Row("doc", "1", "viewer", "user", "tom", "", "adult", "{}", None)
    >>> caveat_verdict(schema, {"age": 20}, row)
    (<Tri.TRUE: 2>, frozenset())
    >>> caveat_verdict(schema, {}, row)[1]
    frozenset({'age'})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..dsl import schema as s
from .errors import CaveatEvaluationError
from .outcome import Tri
from .store import Row

__all__ = ["caveat_verdict"]


def caveat_verdict(schema: s.Schema, context: Mapping[str, Any], row: Row) -> tuple[Tri, frozenset[str]]:
    """Whether the caveated relationship ``row`` holds under the request ``context`` (its stored context wins):
    TRUE, FALSE, or UNKNOWN with the missing parameters."""
    assert row.caveat_name is not None
    caveat = schema.caveats.get(row.caveat_name)
    if caveat is None or caveat.program is None:
        raise CaveatEvaluationError(f"caveat `{row.caveat_name}` on {row.relationship()} is not defined in the schema")
    merged = dict(context)
    if row.caveat_context:
        merged.update(json.loads(row.caveat_context))
    try:
        result = caveat.program.evaluate(merged)
    except Exception as exc:  # the CEL layer's errors: bad context values, runtime errors
        raise CaveatEvaluationError(f"evaluating caveat `{caveat.name}` of {row.relationship()}: {exc}") from exc
    if result.value is None:
        return Tri.UNKNOWN, frozenset(result.missing)
    return (Tri.TRUE if result.value else Tri.FALSE), frozenset()
