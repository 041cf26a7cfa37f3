"""The OpenLineage event format (spec 2-0-2), as a JSON Schema, and the validation of incoming events.

OpenLineage defines three events (https://openlineage.io/spec/2-0-2/OpenLineage.json):
a **run event** (``eventType``, ``run`` with its ``runId``, ``job``, ``inputs``,
``outputs``), a **dataset event** (one ``dataset`` with its facets) and a **job event**
(a ``job`` with its design-time ``inputs`` and ``outputs``), each with ``eventTime``,
``producer`` and ``schemaURL``. :data:`EVENT_SCHEMA` states the structure of those
three, written from the spec's definitions (no registry package ships the spec file;
docs/decisions/openlineage.md); facets stay open (any facet may appear, each an object
with ``_producer`` and ``_schemaURL``), except the ``tags`` dataset facet, whose entries
Headwater reads. :func:`validate_event` checks one decoded event and raises
:class:`OpenLineageEventError` naming the first problem by its JSON path.

Example::

    >>> validate_event({"eventType": "COMPLETE", "eventTime": "2026-12-06T10:00:00Z",
    ...                 "producer": "https://example.com/pipeline", "schemaURL": SCHEMA_URL + "#/$defs/RunEvent",
    ...                 "run": {"runId": "0194c3a8-4a9f-7c4e-9b1e-2f0b6c1d2e3f"}, "job": {"namespace": "ml",
    ...                 "name": "train"}})
    'run'
    >>> validate_event({"eventTime": "yesterday", "producer": "https://example.com", "schemaURL": SCHEMA_URL,
    ...                 "job": {"namespace": "ml", "name": "train"}})
    Traceback (most recent call last):
    ...
    headwater.engine.errors.OpenLineageEventError: $.eventTime: 'yesterday' is not a 'date-time'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from ..errors import OpenLineageEventError

__all__ = ["EVENT_SCHEMA", "SCHEMA_URL", "event_kind", "validate_event"]

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

_STRING = {"type": "string"}
_URI = {"type": "string", "format": "uri"}
_FACETS = {"type": "object", "additionalProperties": {"$ref": "#/$defs/Facet"}}

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_URL,
    "$defs": {
        "BaseEvent": {
            "type": "object",
            "properties": {"eventTime": {"type": "string", "format": "date-time"}, "producer": _URI,
                           "schemaURL": _URI},
            "required": ["eventTime", "producer", "schemaURL"],
        },
        "RunEvent": {
            "allOf": [{"$ref": "#/$defs/BaseEvent"}, {
                "type": "object",
                "properties": {
                    "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
                    "run": {"$ref": "#/$defs/Run"},
                    "job": {"$ref": "#/$defs/Job"},
                    "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                    "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
                },
                "required": ["run", "job"],
            }],
        },
        "DatasetEvent": {
            "allOf": [{"$ref": "#/$defs/BaseEvent"}, {
                "type": "object",
                "properties": {"dataset": {"$ref": "#/$defs/Dataset"}},
                "required": ["dataset"],
                "not": {"anyOf": [{"required": ["job"]}, {"required": ["run"]}]},
            }],
        },
        "JobEvent": {
            "allOf": [{"$ref": "#/$defs/BaseEvent"}, {
                "type": "object",
                "properties": {
                    "job": {"$ref": "#/$defs/Job"},
                    "inputs": {"type": "array", "items": {"$ref": "#/$defs/InputDataset"}},
                    "outputs": {"type": "array", "items": {"$ref": "#/$defs/OutputDataset"}},
                },
                "required": ["job"],
                "not": {"required": ["run"]},
            }],
        },
        "Run": {
            "type": "object",
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS},
            "required": ["runId"],
        },
        "Job": {
            "type": "object",
            "properties": {"namespace": _STRING, "name": _STRING, "facets": _FACETS},
            "required": ["namespace", "name"],
        },
        "Dataset": {
            "type": "object",
            "properties": {"namespace": _STRING, "name": _STRING,
                           "facets": {"type": "object", "properties": {"tags": {"$ref": "#/$defs/TagsFacet"}},
                                      "additionalProperties": {"$ref": "#/$defs/Facet"}}},
            "required": ["namespace", "name"],
        },
        "InputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {
            "type": "object", "properties": {"inputFacets": _FACETS}}]},
        "OutputDataset": {"allOf": [{"$ref": "#/$defs/Dataset"}, {
            "type": "object", "properties": {"outputFacets": _FACETS}}]},
        "Facet": {
            "type": "object",
            "properties": {"_producer": _URI, "_schemaURL": _URI, "_deleted": {"type": "boolean"}},
            "anyOf": [{"required": ["_producer", "_schemaURL"]}, {"required": ["_deleted"]}],
        },
        "TagsFacet": {"allOf": [{"$ref": "#/$defs/Facet"}, {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {
                "type": "object",
                "properties": {"key": _STRING, "value": _STRING, "source": _STRING, "field": _STRING},
                "required": ["key", "value"],
            }}},
        }]},
    },
}

_KINDS = ("RunEvent", "JobEvent", "DatasetEvent")

_checker = FormatChecker(formats=())


@_checker.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None  # RFC 3339: a date, a time and an offset


@_checker.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(UUID(value))


@_checker.checks("uri", raises=ValueError)
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


_VALIDATORS = {kind: Draft202012Validator({**EVENT_SCHEMA, "$ref": f"#/$defs/{kind}"}, format_checker=_checker)
               for kind in _KINDS}


def event_kind(event: object) -> str:
    """Which of the three events ``event`` claims to be: ``run`` (it has a ``run``), ``dataset`` (a ``dataset``)
    or ``job`` (a ``job`` without a run) — the spec's own distinction (its ``schemaURL`` fragment may be absent)."""
    if isinstance(event, dict):
        if "run" in event:
            return "run"
        if "dataset" in event:
            return "dataset"
    return "job"


def validate_event(event: object) -> str:
    """Check ``event`` against the spec; its kind (see :func:`event_kind`), or OpenLineageEventError naming the
    first problem (``$.run.runId: 'x' is not a 'uuid'``)."""
    if not isinstance(event, dict):
        raise OpenLineageEventError(f"an event is a JSON object, not {type(event).__name__}")
    kind = event_kind(event)
    validator = _VALIDATORS[{"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}[kind]]
    error = jsonschema.exceptions.best_match(validator.iter_errors(event))
    if error is not None:
        raise OpenLineageEventError(f"{error.json_path}: {error.message}")
    return kind
