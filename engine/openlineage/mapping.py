"""From OpenLineage names to Headwater objects: the mapping (a TOML ``[openlineage]`` table) and the object ids.

An OpenLineage dataset is named by a ``namespace`` (where it lives:
``postgres://db:5432``, ``s3://ml-artifacts``) and a ``name`` within it
(``public.claims``, ``models/risk``). :func:`dataset_id` encodes the pair into an
object id made of SpiceDB's id characters, readably and reversibly
(:func:`dataset_name` decodes it): the namespace and the name joined by ``|``;
letters, digits, ``/``, ``_`` and ``-`` kept; ``.`` written ``+``; any other
character (``:``, and ``|``, ``+``, ``=`` themselves) as ``=`` and two hex digits
per UTF-8 byte, as in MIME's quoted-printable::

    >>> dataset_id("postgres://db:5432", "public.claims_2026")
    'postgres=3A//db=3A5432|public+claims_2026'
    >>> dataset_name('postgres=3A//db=3A5432|public+claims_2026')
    ('postgres://db:5432', 'public.claims_2026')
    >>> dataset_id("s3://ml", "models/risk v2+")
    's3=3A//ml|models/risk=20v2=2B'

The mapping says which object type each dataset becomes and how a job's outputs
link to its inputs (the full reference, with the default, is in
docs/lineage-capture.md)::

    [openlineage]
    default_type = "dataset"          # a dataset no rule matches
    label_relation = "label"          # the relation carrying an object's own label

    [[openlineage.datasets]]          # first matching rule wins; globs on namespace and name
    name = "models/*"
    type = "model"

    [[openlineage.jobs]]              # which jobs produce what: the type of the job's outputs
    name = "*infer*"
    outputs = "output"
    # relations = { model = "produced_by" }   # by input type; default: the one lineage relation that fits

    [[openlineage.tags]]              # dataset tags (the `tags` facet) -> label relationships
    key = "sensitivity"               # sensitivity=confidential -> label@sensitivity:confidential
    label = "sensitivity:{value}"

Example::

    >>> mapping = Mapping.from_toml({"openlineage": {"datasets": [{"name": "models/*", "type": "model"}]}})
    >>> mapping.dataset_type("s3://ml", "models/risk"), mapping.dataset_type("s3://ml", "claims")
    ('model', 'dataset')
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import read_toml
from ..errors import ConfigError, OpenLineageEventError

__all__ = ["DEFAULT_MAPPING", "DatasetRule", "JobRule", "Mapping", "TagRule", "dataset_id", "dataset_name",
           "load_mapping"]

_KEPT = re.compile(r"[A-Za-z0-9/_\-]")
_MAX_ID_LENGTH = 1024


def _encode(text: str) -> str:
    out = []
    for ch in text:
        if _KEPT.fullmatch(ch):
            out.append(ch)
        elif ch == ".":
            out.append("+")
        else:
            out.extend(f"={b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def _decode(text: str) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "=":
            if not re.fullmatch(r"[0-9A-F]{2}", text[i + 1:i + 3]):
                raise ValueError(f"`=` not followed by two hex digits at {i}")
            out += bytes.fromhex(text[i + 1:i + 3])
            i += 3
            continue
        if ch == "|" or not (ch == "+" or _KEPT.fullmatch(ch)):
            raise ValueError(f"{ch!r} at {i} is never written by the encoding")
        out += (b"." if ch == "+" else ch.encode("utf-8"))
        i += 1
    return out.decode("utf-8")


def dataset_id(namespace: str, name: str) -> str:
    """The object id of the dataset ``name`` in ``namespace`` (see the module docstring); OpenLineageEventError
    when it would pass SpiceDB's 1,024 characters."""
    encoded = f"{_encode(namespace)}|{_encode(name)}"
    if len(encoded) > _MAX_ID_LENGTH:
        raise OpenLineageEventError(f"dataset {namespace!r} {name!r}: its object id would be {len(encoded)} "
                                    f"characters, more than {_MAX_ID_LENGTH}")
    return encoded


def dataset_name(object_id: str) -> tuple[str, str]:
    """The (namespace, name) an object id of :func:`dataset_id` encodes; ValueError if it is not one."""
    namespace, sep, name = object_id.partition("|")
    if not sep:
        raise ValueError(f"{object_id!r} is not an OpenLineage dataset id (no `|` between namespace and name)")
    try:
        return _decode(namespace), _decode(name)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{object_id!r} is not an OpenLineage dataset id: {exc}") from None


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True, slots=True)
class DatasetRule:
    """Datasets whose namespace and name match these globs (None: any) become objects of ``type``."""

    type: str
    namespace: str | None = None
    name: str | None = None

    def matches(self, namespace: str, name: str) -> bool:
        return _glob(self.namespace, namespace) and _glob(self.name, name)


@dataclass(frozen=True, slots=True)
class JobRule:
    """Jobs whose namespace and name match: their outputs become ``outputs`` objects (None: as the dataset rules
    say), linked to each input by ``relations[input type]`` (default: the one lineage relation that fits)."""

    namespace: str | None = None
    name: str | None = None
    outputs: str | None = None
    relations: AnyMapping[str, str] = field(default_factory=dict)

    def matches(self, namespace: str, name: str) -> bool:
        return _glob(self.namespace, namespace) and _glob(self.name, name)


@dataclass(frozen=True, slots=True)
class TagRule:
    """A dataset tag with this ``key`` (and a value matching ``value``, a glob; None: any value but ``false``)
    labels the dataset with ``label`` (``classification:value``; ``{value}`` is replaced by the tag's value,
    lowercased). ``columns``: whether a tag on one column (its ``field``) labels the dataset too."""

    key: str
    label: str
    value: str | None = None
    columns: bool = True

    def label_for(self, key: str, value: str, column: str | None) -> str | None:
        if key.lower() != self.key.lower() or (column is not None and not self.columns):
            return None
        if self.value is None:
            if value.strip().lower() == "false":
                return None
        elif not fnmatch.fnmatchcase(value.lower(), self.value.lower()):
            return None
        return self.label.replace("{value}", value.strip().lower())


@dataclass(frozen=True, slots=True)
class Mapping:
    """How OpenLineage events become relationships (see the module docstring and docs/lineage-capture.md)."""

    default_type: str = "dataset"
    label_relation: str = "label"
    datasets: tuple[DatasetRule, ...] = ()
    jobs: tuple[JobRule, ...] = ()
    tags: tuple[TagRule, ...] = ()
    #: Run events whose lineage is recorded: COMPLETE always; RUNNING (outputs seen mid-run) when listed.
    event_types: tuple[str, ...] = ("COMPLETE",)

    def dataset_type(self, namespace: str, name: str) -> str:
        """The object type of a dataset by the dataset rules (the first that matches), else ``default_type``."""
        for rule in self.datasets:
            if rule.matches(namespace, name):
                return rule.type
        return self.default_type

    def job_rule(self, namespace: str, name: str) -> JobRule | None:
        return next((rule for rule in self.jobs if rule.matches(namespace, name)), None)

    @classmethod
    def from_toml(cls, data: AnyMapping[str, Any], source: str = "mapping") -> Mapping:
        """The mapping of a parsed TOML document's ``[openlineage]`` table; ConfigError names a bad key."""
        table = data.get("openlineage")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: no [openlineage] table")
        known = {"default_type", "label_relation", "datasets", "jobs", "tags", "event_types"}
        _no_unknown(table, known, f"{source} [openlineage]")
        datasets = tuple(DatasetRule(**_rule(r, {"type", "namespace", "name"}, {"type"}, f"{source} datasets"))
                         for r in _list(table, "datasets", source))
        jobs = tuple(JobRule(**_rule(r, {"namespace", "name", "outputs", "relations"}, set(), f"{source} jobs"))
                     for r in _list(table, "jobs", source))
        tags = tuple(TagRule(**_rule(r, {"key", "label", "value", "columns"}, {"key", "label"}, f"{source} tags"))
                     for r in _list(table, "tags", source))
        event_types = tuple(table.get("event_types", ("COMPLETE",)))
        bad = sorted(set(event_types) - {"COMPLETE", "RUNNING", "OTHER"})
        if bad:
            raise ConfigError(f"{source} [openlineage] event_types: {bad} cannot be recorded (COMPLETE, RUNNING, "
                              "OTHER; a START, FAIL or ABORT run has not produced its outputs)")
        for rule in tags:
            if rule.label.count(":") != 1:
                raise ConfigError(f"{source} tags: label {rule.label!r} is not `classification:value`")
        return cls(default_type=str(table.get("default_type", "dataset")),
                   label_relation=str(table.get("label_relation", "label")), datasets=datasets, jobs=jobs,
                   tags=tags, event_types=event_types)


def _no_unknown(table: AnyMapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: {sorted(known)}")


def _list(table: AnyMapping[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{source} [openlineage] {key}: a list of tables ([[openlineage.{key}]])")
    return value


def _rule(rule: dict[str, Any], known: set[str], required: set[str], where: str) -> dict[str, Any]:
    _no_unknown(rule, known, where)
    missing = sorted(required - set(rule))
    if missing:
        raise ConfigError(f"{where}: a rule without {missing[0]!r}: {rule}")
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in rule.items()}


DEFAULT_MAPPING = Mapping(
    datasets=(DatasetRule(type="model", name="models/*"),),
    jobs=(JobRule(name="*train*", outputs="model"), JobRule(name="*infer*", outputs="output"),
          JobRule(name="*predict*", outputs="output")),
    tags=(TagRule(key="sensitivity", label="sensitivity:{value}"), TagRule(key="pii", label="sensitivity:pii"),
          TagRule(key="phi", label="sensitivity:phi"), TagRule(key="financial", label="sensitivity:financial")),
)
"""The default: fits examples/ai-lineage/policy.zed (datasets, models under ``models/``, training jobs make
models, inference and prediction jobs make outputs; tags ``sensitivity=<level>``, ``pii``, ``phi``,
``financial``)."""


def load_mapping(path: str | Path | None) -> Mapping:
    """The mapping of the TOML file at ``path`` (its ``[openlineage]`` table), or the default for None."""
    if path is None:
        return DEFAULT_MAPPING
    return Mapping.from_toml(read_toml(path, "OpenLineage mapping"), f"OpenLineage mapping {path}")
