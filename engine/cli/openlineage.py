"""``headwater openlineage ingest`` and ``id``: OpenLineage events from a file, and the object ids they map to."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from ..errors import EngineError, OpenLineageEventError
from ..openlineage import IngestResult, dataset_id, ingest, load_mapping, plan
from ..openlineage.ingest import stored_types
from ..store import Operation, Update
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, is_remote, json_flag, plural, print_json, read_input
from .table import EXIT_OK, EXIT_USAGE, Command, Group, arg

MAPPING = arg("--mapping", metavar="FILE", help="TOML file whose [openlineage] table maps datasets and jobs to "
                                                "objects (docs/lineage-capture.md; default: the built-in mapping)")


def _events(path: str) -> list[tuple[int, Any]]:
    """The events of an NDJSON file with their line numbers (blank lines skipped)."""
    events = []
    for number, line in enumerate(read_input(path).splitlines(), 1):
        if line.strip():
            try:
                events.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise OpenLineageEventError(f"{path}:{number}: not JSON: {exc}") from None
    return events


def _record(target: Any, events: list[Any], mapping: Any) -> IngestResult:
    """Record one batch in a database (written only when something changed) or through a server."""
    if not is_remote(target):
        return ingest(target, events, mapping)
    planned = plan(target.schema(), events, mapping, known=stored_types(target))
    token = target.write([Update(Operation.TOUCH, r) for r in planned.relationships],
                         reason=f"OpenLineage: {plural(len(events), 'event')}").token
    return IngestResult(token, True, len(events), planned.recorded, planned.ignored, len(planned.relationships))


@engine_errors
def _cmd_ingest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    mapping = load_mapping(args.mapping)
    numbered = _events(args.file)
    totals = {"events": 0, "recorded": 0, "ignored": 0, "relationships": 0, "revision": None}
    with connect(args) as target:
        for start in range(0, len(numbered), args.batch):
            batch = numbered[start:start + args.batch]
            lines = f"{args.file}:{batch[0][0]}" + (f"-{batch[-1][0]}" if len(batch) > 1 else "")
            try:
                result = _record(target, [event for _, event in batch], mapping)
            except OpenLineageEventError as exc:
                raise OpenLineageEventError(f"{_where(args.file, batch, str(exc))}; nothing of {lines} was "
                                            f"stored{_committed(totals)}") from None
            except EngineError as exc:
                raise type(exc)(f"{lines}: {exc}; nothing of it was stored{_committed(totals)}") from None
            for key in ("events", "recorded", "ignored", "relationships"):
                totals[key] += getattr(result, key)
            totals["revision"] = result.token
    if args.json:
        print_json(totals, out)
    else:
        print(f"{plural(totals['events'], 'event')} read, {totals['recorded']} recorded, {totals['ignored']} "
              f"ignored: {plural(totals['relationships'], 'relationship')} at {totals['revision']}", file=out)
    return EXIT_OK


def _where(path: str, batch: list[tuple[int, Any]], message: str) -> str:
    """``message`` of a failed batch, its ``event K:`` turned into the file's line."""
    if message.startswith("event ") and ":" in message:
        position, _, rest = message[len("event "):].partition(":")
        if position.isdigit() and 1 <= int(position) <= len(batch):
            return f"{path}:{batch[int(position) - 1][0]}:{rest}"
    return f"{path}:{batch[0][0]}: {message}"


def _committed(totals: dict[str, Any]) -> str:
    if not totals["events"]:
        return ""
    return f" (the {plural(totals['events'], 'event')} before it were, at {totals['revision']})"


@engine_errors
def _cmd_id(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    mapping = load_mapping(args.mapping)
    type_ = args.type or mapping.dataset_type(args.namespace, args.name)
    print(f"{type_}:{dataset_id(args.namespace, args.name)}", file=out)
    return EXIT_OK if type_ else EXIT_USAGE


COMMANDS = (
    Group("openlineage", help="record OpenLineage events as lineage and labels",
          description="OpenLineage run, job and dataset events (Airflow, Spark, dbt...) recorded as lineage and "
                      "label relationships; a server takes them over HTTP at /api/v1/lineage "
                      "(docs/lineage-capture.md).", help_when_bare=True),
    Command(
        "openlineage ingest", help="record the events of a newline-delimited JSON file",
        description="Validate each event of FILE (one JSON event per line) against the OpenLineage spec, map it "
                    "with the mapping, and record the lineage and labels it describes in atomic batches of "
                    "--batch events (a batch is refused whole on a bad event, naming its line, or on a lineage "
                    "cycle; earlier batches stay). Already recorded events change nothing.",
        args=(arg("file", metavar="FILE", help="newline-delimited JSON events; '-' is stdin"), MAPPING,
              arg("--batch", type=int, default=100, metavar="N", help="events per atomic write (default 100)"),
              DB_OR_SERVER, json_flag("print the totals as JSON"), *SERVER),
        run=_cmd_ingest),
    Command(
        "openlineage id", help="the object an OpenLineage dataset maps to",
        description="Print the object (type:id) that the dataset NAME in NAMESPACE maps to: its type by the "
                    "mapping's dataset rules (or --type: the outputs of a job rule have that rule's type), its id "
                    "the readable, reversible encoding of namespace and name.",
        args=(arg("namespace", metavar="NAMESPACE", help="e.g. postgres://warehouse:5432"),
              arg("name", metavar="NAME", help="e.g. claims.public.customer_claims"), MAPPING,
              arg("--type", help="the object type (default: by the mapping's dataset rules)")),
        run=_cmd_id),
)
