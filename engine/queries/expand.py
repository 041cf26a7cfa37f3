"""Expand: the subject tree of a relation or permission on a resource, at one snapshot.

The tree itself is built by :mod:`..expand`; this is the operation around it:
the snapshot its consistency selects, the lineage cache, the depth limit, and a
clear error when the tree nests deeper than the process's stack.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> folders = Engine(MemoryStore())
    >>> _ = folders.write_schema("definition user {}\\ndefinition folder {\\n relation reader: user | user:*\\n}")
    >>> _ = folders.touch("folder:shared#reader@user:*", "folder:shared#reader@user:ops")
    >>> tree, token = folders.expand("folder:shared", "reader")
    >>> sorted(str(s.subject) for s in tree.subjects)
    ['user:*', 'user:ops']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..consistency import Consistency, encode_token
from ..context import Context
from ..contexts import validate_context
from ..evaluator import stack_exhausted
from ..expand import ExpandNode, expand
from ..relationships import ObjectRef, parse_object

__all__ = ["ExpandQuery"]


class ExpandQuery:
    """Expand over one engine's :class:`~..context.Context`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def expand(self, resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
               consistency: Consistency | None = None) -> tuple[ExpandNode, str]:
        """See :meth:`~headwater.engine.Engine.expand`."""
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        validate_context(context)
        max_depth = self.ctx.config.limits.max_depth
        with self.ctx.snapshot(consistency) as (reader, schema):
            budget = self.ctx.budget()
            try:
                tree = expand(schema, reader, res, permission, context=context, max_depth=max_depth,
                              lineage=self.ctx.lineage(schema, reader, budget), budget=budget)
            except RecursionError:
                raise stack_exhausted(max_depth) from None
            return tree, encode_token(reader.revision)
