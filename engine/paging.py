"""Cursored listings: one way every paged answer pins its revision and says where to continue.

A listing (LookupResources, LookupSubjects, ReadRelationships, ancestors and
descendants) is a sorted sequence at one revision. Its first page reads the
revision its consistency selects; every later page is asked with the cursor of
the page before, which names that revision, the last item returned and the
query it belongs to (so a cursor of another query is refused). A page of
``limit`` items gets a cursor only when more items follow: the last page has
none, and there is never an empty page to fetch.

Example::

    >>> place = Place.start("listing-query", None, None)
    >>> page, cursor = place.page(["a", "b", "c"], 2, revision=7, position=str)
    >>> page, Place.start("listing-query", cursor, None).after
    (['a', 'b'], 'b')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .consistency import Consistency, decode_cursor, encode_cursor, encode_token
from .errors import InvalidRequestError

__all__ = ["Place", "validate_limit"]

T = TypeVar("T")


def validate_limit(limit: int | None, name: str = "limit", *, required: bool = False) -> None:
    """Refuse a page size that is not a positive integer (None: no limit, unless ``required``)."""
    if limit is None and not required:
        return
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidRequestError(f"{name} must be a positive integer, got {limit!r}")


@dataclass(frozen=True, slots=True)
class Place:
    """Where a page of one listing starts: the query, the consistency to read at, and the last item seen."""

    query: str  # what a cursor is bound to: the listing's kind and parameters
    consistency: Consistency | None  # the caller's, or the cursor's revision exactly
    after: str | None  # the position of the last item of the previous page (None: from the start)

    @classmethod
    def start(cls, query: str, cursor: str | None, consistency: Consistency | None) -> Place:
        """The place a cursor names (a malformed cursor, or one of another query, is refused), else the start."""
        if cursor is None:
            return cls(query, consistency, None)
        revision, after = decode_cursor(cursor, query)
        return cls(query, Consistency.at_exact_snapshot(encode_token(revision)), after)

    def page(self, items: Sequence[T], limit: int | None, *, revision: int,
             position: Callable[[T], str]) -> tuple[list[T], str | None]:
        """At most ``limit`` of ``items`` (the listing from this place on, or at least ``limit`` + 1 of it),
        and the cursor to the next page, when there is one."""
        if limit is None or len(items) <= limit:
            return list(items), None
        page = list(items[:limit])
        return page, self.cursor(revision, position(page[-1]))

    def cursor(self, revision: int, after: str) -> str:
        """The cursor to continue this listing after the item at position ``after``."""
        return encode_cursor(revision, after, self.query)
