"""A workspace as a validation file (the YAML ``headwater validate`` runs), written and read back.

Export writes ``schema`` inline, the relationships one per line and the
``assertions`` / ``validation`` blocks as the page holds them (their text, comments
kept). A declassification's actor and reason, which a validation file has no field
for, ride in a comment on the line before it (``// declassified by user:stew:
k-anonymized``): ``headwater validate`` ignores the comment, import reads it back.
Example::

    >>> from headwater.engine.playground.rows import Row
    >>> text = export_yaml("definition user {}", [Row("user:a#friend@user:b")], "assertions:\\n  assertTrue: []\\n")
    >>> print(text)
    # A Headwater playground workspace; run it with: headwater validate FILE
    schema: |-
      definition user {}
    relationships: |-
      user:a#friend@user:b
    assertions:
      assertTrue: []
    <BLANKLINE>
    >>> parsed = import_yaml(text)
    >>> parsed.schema, parsed.rows
    ('definition user {}', [Row(text='user:a#friend@user:b', actor='', reason='')])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from ..errors import EngineError, ValidationFileError
from ..relationships import parse_relationship
from .rows import Row

__all__ = ["ImportedFile", "assertions_problem", "export_yaml", "import_yaml"]

HEADER = "# A Headwater playground workspace; run it with: headwater validate FILE\n"
_DECLASSIFIED = re.compile(r"//\s*declassified by\s+(?P<actor>\S+):\s+(?P<reason>.+?)\s*$")
_ASSERTION_KEYS = ("assertions", "validation")


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """What a validation file gives a workspace."""

    schema: str
    rows: list[Row]
    assertions: str  # the `assertions:` and `validation:` blocks as written


def _block(key: str, text: str) -> str:
    """``key: |-`` and ``text`` indented (an explicit indentation when the first line starts with a space)."""
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    if not lines:
        return f'{key}: ""\n'
    first = next((line for line in lines if line.strip()), "")
    indicator = "|2-" if first[:1] in (" ", "\t") else "|-"
    return f"{key}: {indicator}\n" + "".join(f"  {line}\n" if line.strip() else "\n" for line in lines)


def export_yaml(schema: str, rows: Sequence[Row], assertions: str) -> str:
    """The workspace as one validation file."""
    lines = []
    for row in rows:
        if row.actor:
            lines.append(f"// declassified by {row.actor}: {' '.join(row.reason.split())}")
        lines.append(row.text)
    body = assertions.strip("\n")
    return HEADER + _block("schema", schema) + _block("relationships", "\n".join(lines)) + (body + "\n" if body
                                                                                          else "")


def assertions_problem(text: str) -> str | None:
    """Why ``text`` cannot be the assertion blocks of a validation file (None: it can): YAML holding only
    ``assertions`` and ``validation``."""
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return f"line {mark.line + 1 if mark else 0}: invalid YAML: {getattr(exc, 'problem', exc)}"
    if value is None:
        return None
    if not isinstance(value, dict):
        return "the assertions must be a YAML mapping with `assertions` and/or `validation`"
    unknown = sorted(set(value) - set(_ASSERTION_KEYS))
    if unknown:
        return f"only `assertions` and `validation` belong here, not {', '.join(map(str, unknown))}"
    return None


def import_yaml(text: str, *, path: str = "<import>") -> ImportedFile:
    """Read a validation file into a workspace's parts; raises ValidationFileError naming the line."""
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValidationFileError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path,
                                  mark.line + 1 if mark else 0) from None
    if len(nodes) != 1 or not isinstance(nodes[0], yaml.MappingNode):
        raise ValidationFileError("the playground imports one YAML document holding a mapping", path)
    keys = {k.value: (k, v) for k, v in nodes[0].value if isinstance(k, yaml.ScalarNode)}
    if "schemaFile" in keys:
        raise ValidationFileError("`schemaFile` names a file the page cannot read: put the schema inline "
                                  "(`schema: |`)", path, keys["schemaFile"][0].start_mark.line + 1)
    unknown = sorted(set(keys) - {"schema", "relationships", *_ASSERTION_KEYS})
    if unknown:
        raise ValidationFileError(f"unknown key {unknown[0]}", path, keys[unknown[0]][0].start_mark.line + 1)
    doc = yaml.safe_load(text)
    schema = _string(doc, keys, "schema", path)
    rows = _rows(_string(doc, keys, "relationships", path), keys.get("relationships"), path)
    parts = [text[k.start_mark.index:v.end_mark.index].rstrip() for name, (k, v) in keys.items()
             if name in _ASSERTION_KEYS]
    return ImportedFile(schema, rows, "\n".join(parts) + "\n" if parts else "")


def _string(doc: dict[str, object], keys: dict[str, tuple[yaml.Node, yaml.Node]], name: str, path: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFileError(f"`{name}` must be a string", path, keys[name][0].start_mark.line + 1)
    return value


def _rows(text: str, pair: tuple[yaml.Node, yaml.Node] | None, path: str) -> list[Row]:
    start = pair[1].start_mark.line + (1 if getattr(pair[1], "style", None) in ("|", ">") else 0) if pair else 0
    out: list[Row] = []
    actor = reason = ""
    for number, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("//"):
            found = _DECLASSIFIED.match(line)
            actor, reason = (found["actor"], found["reason"]) if found else ("", "")
            continue
        try:
            out.append(Row(str(parse_relationship(line)), actor, reason))
        except EngineError as exc:
            raise ValidationFileError(str(exc), path, start + number + 1) from None
        actor = reason = ""
    return out
