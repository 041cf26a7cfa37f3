"""Relationship values and the one parser/formatter of their SpiceDB text form.

The text form is ``type:id#relation@subjtype:subjid[#subjrel][caveat[:{json}]][expiration:RFC3339]``::

    document:doc1#viewer@group:eng#member
    doc:1#viewer@user:*
    doc:1#viewer@user:tom[only_on_tuesday:{"day":"tue"}]
    doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]

Every value checks its fields when it is built, so an invalid ``ObjectRef`` or
``Relationship`` cannot exist; every problem is an ``InvalidRelationshipError``
whose message quotes the input and says what is wrong.

Example::

    >>> rel = parse_relationship("document:doc1#viewer@group:eng#member")
    >>> rel.subject
    SubjectRef(type='group', id='eng', relation='member')
    >>> str(rel)
    'document:doc1#viewer@group:eng#member'
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeAlias

from ..dsl import caveat_name_problem
from .contexts import canonical_context, loads_context, reject_constant
from .errors import InvalidRelationshipError

__all__ = [
    "CaveatRef",
    "ObjectRef",
    "Relationship",
    "RelationshipKey",
    "SubjectRef",
    "format_expiration",
    "format_relationship",
    "parse_object",
    "parse_relationship",
    "parse_subject",
    "stored_object",
    "stored_relationship",
]

_TYPE_RE = re.compile(r"(?:[a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]")
_RELATION_RE = re.compile(r"[a-z][a-z0-9_]{1,62}[a-z0-9]")
_ID_CHARS_RE = re.compile(r"[a-zA-Z0-9/_|\-=+]*")
_MAX_ID_LENGTH = 1024
_WILDCARD = "*"
_NO_RELATION = "..."  # SpiceDB's spelling of "no subject relation"
_EXPIRATION = "expiration"
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)

_TYPE_RULE = (
    "type names are 3 to 64 lowercase letters, digits and underscores, start with a letter, "
    "do not end with an underscore, and may have 'prefix/' namespaces"
)
_RELATION_RULE = (
    "relation names are 3 to 64 lowercase letters, digits and underscores, "
    "start with a letter and do not end with an underscore"
)


# --- field checks: each returns None when fine, else (what, value, why) -------------------

_Problem: TypeAlias = "tuple[str, str, str] | None"


def _type_problem(what: str, value: object) -> _Problem:
    if not isinstance(value, str):
        return (what, repr(value), "must be a string")
    if _TYPE_RE.fullmatch(value) is None:
        return (what, value, _TYPE_RULE)
    return None


def _caveat_problem(value: object) -> _Problem:
    # One rule with the schema language, which owns it (SpiceDB's API rule: 1 to 128 characters, `ab` included;
    # see dsl/compiler/names.py): a caveat that a schema can declare can be named on a relationship.
    problem = caveat_name_problem(value)
    if problem is None:
        return None
    return ("caveat name", value if isinstance(value, str) else repr(value), problem)


def _relation_problem(what: str, value: object) -> _Problem:
    if not isinstance(value, str):
        return (what, repr(value), "must be a string")
    if _RELATION_RE.fullmatch(value) is None:
        return (what, value, _RELATION_RULE)
    return None


def _id_problem(what: str, value: object, *, wildcard_allowed: bool) -> _Problem:
    if not isinstance(value, str):
        return (what, repr(value), "must be a string")
    if wildcard_allowed and value == _WILDCARD:
        return None
    if _ID_CHARS_RE.fullmatch(value) is None:
        return (what, value, "ids may contain only letters, digits and /_|-=+")
    if not value:
        return (what, value, "ids must not be empty")
    if len(value) > _MAX_ID_LENGTH:
        return (what, value[:40] + "...", f"ids are at most {_MAX_ID_LENGTH} characters")
    return None


def _raise(problem: tuple[str, str, str], context: str) -> NoReturn:
    what, value, why = problem
    raise InvalidRelationshipError(f"invalid {what} {value!r} in {context!r}: {why}")


def _check(problems: tuple[_Problem, ...], context: str) -> None:
    for problem in problems:
        if problem is not None:
            _raise(problem, context)


# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """One object, such as a resource: ``ObjectRef("document", "doc1")`` prints ``document:doc1``.

    Example::

        >>> str(ObjectRef("document", "doc1"))
        'document:doc1'
    """

    type: str
    id: str

    def __post_init__(self) -> None:
        problem = _type_problem("object type", self.type) or _id_problem("object id", self.id, wildcard_allowed=False)
        if problem is not None:
            both_strings = isinstance(self.type, str) and isinstance(self.id, str)
            _raise(problem, f"{self.type}:{self.id}" if both_strings else repr(self))

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class SubjectRef:
    """A subject: an object (``user:tom``), a subject set (``group:eng#member``) or a wildcard (``user:*``).

    ``relation=None`` means "no subject relation" (SpiceDB's ``...``); passing ``"..."``
    is accepted and stored as ``None``. Subjects order by (type, id, relation) with
    ``None`` first.

    Example::

        >>> str(SubjectRef("group", "eng", "member")), SubjectRef("user", "*").is_wildcard
        ('group:eng#member', True)
    """

    type: str
    id: str
    relation: str | None = None

    def __post_init__(self) -> None:
        if self.relation == _NO_RELATION:
            object.__setattr__(self, "relation", None)
        problem = _type_problem("subject type", self.type) or _id_problem("subject id", self.id, wildcard_allowed=True)
        if problem is None and self.relation is not None:
            problem = _relation_problem("subject relation", self.relation)
            if problem is None and self.id == _WILDCARD:
                raise InvalidRelationshipError(
                    f"invalid subject {str(self)!r}: a wildcard subject cannot have a subject relation"
                )
        if problem is not None:
            _raise(problem, _subject_text(self.type, self.id, self.relation))

    @property
    def is_wildcard(self) -> bool:
        """True for ``type:*``, which stands for every subject of that type."""
        return self.id == _WILDCARD

    def _order_key(self) -> tuple[str, str, str]:
        # Relation names are never empty, so "" sorts "no relation" first.
        return (self.type, self.id, self.relation or "")

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SubjectRef):
            return NotImplemented
        return self._order_key() < other._order_key()

    def __str__(self) -> str:
        return _subject_text(self.type, self.id, self.relation)


def _subject_text(type_: object, id_: object, relation: object) -> str:
    if not (isinstance(type_, str) and isinstance(id_, str) and isinstance(relation, str | None)):
        return f"SubjectRef({type_!r}, {id_!r}, {relation!r})"
    return f"{type_}:{id_}" if relation is None else f"{type_}:{id_}#{relation}"


@dataclass(frozen=True, slots=True)
class CaveatRef:
    """A caveat on a relationship: its name and context, kept as canonical JSON so values hash.

    Example::

        >>> CaveatRef("only_on_tuesday", '{ "day": "tue" }').context
        '{"day":"tue"}'
    """

    name: str
    context: str = "{}"

    def __post_init__(self) -> None:
        _check((_caveat_problem(self.name),), f"CaveatRef({self.name!r})")
        if not isinstance(self.context, str):
            raise InvalidRelationshipError(f"invalid caveat context {self.context!r}: must be a JSON object text")
        where = f"CaveatRef({self.name!r})"
        value = loads_context(self.context, lambda t: json.loads(t, parse_constant=reject_constant), where)
        if not isinstance(value, dict):
            raise InvalidRelationshipError(f"invalid caveat context {self.context[:200]!r}: must be a JSON object")
        object.__setattr__(self, "context", canonical_context(value, where))

    def context_dict(self) -> dict[str, Any]:
        """The context as a fresh dict."""
        result: dict[str, Any] = json.loads(self.context)
        return result


RelationshipKey: TypeAlias = "tuple[ObjectRef, str, SubjectRef]"


@dataclass(frozen=True, slots=True)
class Relationship:
    """One stored ``resource#relation@subject``, optionally caveated and expiring.

    ``expiration`` must be timezone-aware and is kept in UTC. Two relationships
    with the same ``key`` are the same relationship; caveat and expiration are
    its attributes.

    Example::

        >>> rel = Relationship(ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"))
        >>> str(rel), rel.key == parse_relationship("doc:1#viewer@user:tom").key
        ('doc:1#viewer@user:tom', True)
    """

    resource: ObjectRef
    relation: str
    subject: SubjectRef
    caveat: CaveatRef | None = None
    expiration: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.resource, ObjectRef):
            raise InvalidRelationshipError(f"invalid resource {self.resource!r}: must be an ObjectRef")
        if not isinstance(self.subject, SubjectRef):
            raise InvalidRelationshipError(f"invalid subject {self.subject!r}: must be a SubjectRef")
        if self.caveat is not None and not isinstance(self.caveat, CaveatRef):
            raise InvalidRelationshipError(f"invalid caveat {self.caveat!r}: must be a CaveatRef or None")
        problem = _relation_problem("relation", self.relation)
        if problem is not None:
            _raise(problem, f"{self.resource}#{self.relation}@{self.subject}")
        if self.expiration is not None:
            if not isinstance(self.expiration, datetime) or self.expiration.utcoffset() is None:
                raise InvalidRelationshipError(
                    f"invalid expiration {self.expiration!r}: must be a timezone-aware datetime"
                )
            try:
                utc = self.expiration.astimezone(timezone.utc)
            except OverflowError:
                raise InvalidRelationshipError(
                    f"invalid expiration {self.expiration!r}: out of range once converted to UTC"
                ) from None
            object.__setattr__(self, "expiration", utc)

    @property
    def key(self) -> RelationshipKey:
        """``(resource, relation, subject)``: what identifies the relationship."""
        return (self.resource, self.relation, self.subject)

    def __str__(self) -> str:
        return format_relationship(self)


# --- values read back from a store ---------------------------------------------------------

_new = object.__new__
_set_obj_type, _set_obj_id = ObjectRef.__dict__["type"].__set__, ObjectRef.__dict__["id"].__set__
_set_subj_type, _set_subj_id, _set_subj_rel = (SubjectRef.__dict__[f].__set__ for f in ("type", "id", "relation"))
_rel_setters = tuple(Relationship.__dict__[f].__set__ for f in ("resource", "relation", "subject", "caveat", "expiration"))
_set_cav_name, _set_cav_context = CaveatRef.__dict__["name"].__set__, CaveatRef.__dict__["context"].__set__


def stored_object(type_: str, id_: str) -> ObjectRef:
    """An ObjectRef from fields already checked (a stored relationship's subject), without checking again.

    Example::

        >>> stored_object("doc", "1") == ObjectRef("doc", "1")
        True
    """
    ref = _new(ObjectRef)
    _set_obj_type(ref, type_)
    _set_obj_id(ref, id_)
    return ref


def stored_relationship(resource_type: str, resource_id: str, relation: str, subject_type: str, subject_id: str,
                        subject_relation: str | None, caveat_name: str | None = None, caveat_context: str | None = None,
                        expiration: datetime | None = None) -> Relationship:
    """A Relationship rebuilt from fields a store wrote, without checking them again.

    For store backends only: every field was checked when the relationship was
    built for writing (the constructors above), and stores return exactly what
    they were given, so the second check (a regular expression per field, half
    of the cost of reading a row) is skipped. ``subject_relation`` is None for
    "no relation"; ``caveat_context`` is canonical JSON; ``expiration`` in UTC.

    Example::

        >>> stored_relationship("doc", "1", "viewer", "user", "tom", None) == parse_relationship("doc:1#viewer@user:tom")
        True
    """
    res = _new(ObjectRef)
    _set_obj_type(res, resource_type)
    _set_obj_id(res, resource_id)
    subj = _new(SubjectRef)
    _set_subj_type(subj, subject_type)
    _set_subj_id(subj, subject_id)
    _set_subj_rel(subj, subject_relation)
    caveat = None
    if caveat_name is not None:
        caveat = _new(CaveatRef)
        _set_cav_name(caveat, caveat_name)
        _set_cav_context(caveat, caveat_context if caveat_context is not None else "{}")
    rel = _new(Relationship)
    set_resource, set_relation, set_subject, set_caveat, set_expiration = _rel_setters
    set_resource(rel, res)
    set_relation(rel, relation)
    set_subject(rel, subj)
    set_caveat(rel, caveat)
    set_expiration(rel, expiration)
    return rel


# --- text form -----------------------------------------------------------------------------


def parse_object(text: str) -> ObjectRef:
    """Parse ``type:id``.

    Example::

        >>> parse_object("document:doc1")
        ObjectRef(type='document', id='doc1')
    """
    if type(text) is not str:  # noqa: E721 - also keeps unhashable input away from the cache
        return _parse_object(text, context=repr(text), what="object")
    return _cached_object(text)


def parse_subject(text: str) -> SubjectRef:
    """Parse ``type:id``, ``type:id#relation``, ``type:id#...`` or ``type:*``.

    Example::

        >>> parse_subject("group:eng#member")
        SubjectRef(type='group', id='eng', relation='member')
    """
    if type(text) is not str:  # noqa: E721
        return _parse_subject(text, context=repr(text))
    return _cached_subject(text)


# Values are immutable and a hot path parses the same few strings again and again; errors are not cached.
@functools.lru_cache(maxsize=65536)
def _cached_object(text: str) -> ObjectRef:
    return _parse_object(text, context=text, what="object")


@functools.lru_cache(maxsize=65536)
def _cached_subject(text: str) -> SubjectRef:
    return _parse_subject(text, context=text)


def parse_relationship(text: str) -> Relationship:
    """Parse the SpiceDB text form of one relationship.

    Example::

        >>> parse_relationship("doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]").expiration.year
        2323
    """
    if not isinstance(text, str):
        raise InvalidRelationshipError(f"invalid relationship {text!r}: must be a string")
    bracket = text.find("[")
    main, suffix = (text, "") if bracket < 0 else (text[:bracket], text[bracket:])
    resource_part, at, subject_part = main.partition("@")
    if not at:
        raise InvalidRelationshipError(
            f"invalid relationship {text!r}: missing '@' between the relation and the subject"
        )
    object_part, hash_, relation = resource_part.partition("#")
    if not hash_:
        raise InvalidRelationshipError(
            f"invalid relationship {text!r}: missing '#relation' after the resource {object_part!r}"
        )
    resource = _parse_object(object_part, context=text, what="object")
    _check((_relation_problem("relation", relation),), text)
    subject = _parse_subject(subject_part, context=text)
    caveat, expiration = _parse_suffix(suffix, text)
    return Relationship(resource, relation, subject, caveat, expiration)


def format_relationship(rel: Relationship) -> str:
    """Canonical text for ``rel``; ``parse_relationship`` reads it back to an equal value.

    Example::

        >>> format_relationship(parse_relationship('doc:1#viewer@user:tom[cav:{ "b": 1, "a": 2 }]'))
        'doc:1#viewer@user:tom[cav:{"a":2,"b":1}]'
    """
    text = f"{rel.resource}#{rel.relation}@{rel.subject}"
    if rel.caveat is not None:
        if rel.caveat.context == "{}":
            text += f"[{rel.caveat.name}]"
        else:
            text += f"[{rel.caveat.name}:{rel.caveat.context}]"
    if rel.expiration is not None:
        text += f"[{_EXPIRATION}:{format_expiration(rel.expiration)}]"
    return text


def format_expiration(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, with fractional seconds only when they are not zero.

    Example::

        >>> format_expiration(datetime(2323, 12, 1, 0, 0, 0, 500000, tzinfo=timezone.utc))
        '2323-12-01T00:00:00.5Z'
    """
    utc = moment.astimezone(timezone.utc)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_object(text: str, *, context: str, what: str) -> ObjectRef:
    if not isinstance(text, str):
        raise InvalidRelationshipError(f"invalid {what} {text!r}: must be a string")
    type_, colon, id_ = text.partition(":")
    if not colon:
        raise InvalidRelationshipError(
            f"invalid {what} {text!r} in {context!r}: missing ':' between the type and the id"
        )
    _check((_type_problem(f"{what} type", type_), _id_problem(f"{what} id", id_, wildcard_allowed=False)), context)
    return ObjectRef(type_, id_)


def _parse_subject(text: str, *, context: str) -> SubjectRef:
    if not isinstance(text, str):
        raise InvalidRelationshipError(f"invalid subject {text!r}: must be a string")
    object_part, hash_, relation = text.partition("#")
    type_, colon, id_ = object_part.partition(":")
    if not colon:
        raise InvalidRelationshipError(
            f"invalid subject {text!r} in {context!r}: missing ':' between the type and the id"
        )
    _check((_type_problem("subject type", type_), _id_problem("subject id", id_, wildcard_allowed=True)), context)
    if not hash_ or relation == _NO_RELATION:
        return SubjectRef(type_, id_)
    _check((_relation_problem("subject relation", relation),), context)
    if id_ == _WILDCARD:
        raise InvalidRelationshipError(
            f"invalid subject {text!r} in {context!r}: a wildcard subject cannot have a subject relation"
        )
    return SubjectRef(type_, id_, relation)


def _parse_suffix(suffix: str, context: str) -> tuple[CaveatRef | None, datetime | None]:
    """Read the ``[caveat[:{json}]]`` and ``[expiration:...]`` sections after the subject."""
    caveat: CaveatRef | None = None
    expiration: datetime | None = None
    pos = 0
    while pos < len(suffix):
        if suffix[pos] != "[":
            raise InvalidRelationshipError(
                f"invalid relationship {context!r}: unexpected {suffix[pos:]!r} after the subject"
            )
        name_end = _find_any(suffix, ":]", pos + 1)
        if name_end < 0:
            raise InvalidRelationshipError(f"invalid relationship {context!r}: '[' without a closing ']'")
        name = suffix[pos + 1 : name_end]
        if name == _EXPIRATION and suffix[name_end] == ":" and not suffix.startswith("{", name_end + 1):
            if expiration is not None:
                raise InvalidRelationshipError(f"invalid relationship {context!r}: more than one expiration")
            close = suffix.find("]", name_end)
            if close < 0:
                raise InvalidRelationshipError(f"invalid relationship {context!r}: '[' without a closing ']'")
            expiration = _parse_rfc3339(suffix[name_end + 1 : close], context)
            pos = close + 1
            continue
        if caveat is not None:
            raise InvalidRelationshipError(f"invalid relationship {context!r}: more than one caveat")
        _check((_caveat_problem(name),), context)
        context_json = "{}"
        if suffix[name_end] == ":":
            decoder = json.JSONDecoder(parse_constant=reject_constant)
            value, json_end = loads_context(suffix, lambda t: decoder.raw_decode(t, name_end + 1), repr(context))
            if not isinstance(value, dict):
                raise InvalidRelationshipError(
                    f"invalid caveat context {suffix[name_end + 1 : json_end]!r} in {context!r}: must be a JSON object"
                )
            if not suffix.startswith("]", json_end):
                raise InvalidRelationshipError(
                    f"invalid relationship {context!r}: expected ']' after the caveat context"
                )
            context_json = canonical_context(value, repr(context))
            name_end = json_end
        caveat = CaveatRef(name, context_json)
        pos = name_end + 1
    return caveat, expiration


def _find_any(text: str, chars: str, start: int) -> int:
    for index in range(start, len(text)):
        if text[index] in chars:
            return index
    return -1


def _parse_rfc3339(text: str, context: str) -> datetime:
    match = _RFC3339_RE.fullmatch(text)
    if match is None:
        raise InvalidRelationshipError(
            f"invalid expiration {text!r} in {context!r}: expected an RFC 3339 time such as "
            "'2323-12-01T00:00:00Z' (at most 9 fractional digits)"
        )
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        offset = timedelta(0)
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            # SpiceDB writes nanoseconds; Headwater keeps microseconds (the digits past 6 are dropped)
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone(offset),
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise InvalidRelationshipError(f"invalid expiration {text!r} in {context!r}: {exc}") from None
