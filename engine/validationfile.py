"""SpiceDB validation files: load a schema and relationships, run the assertions (``headwater validate``).

Format (the same files SpiceDB's tools read): top-level keys ``schema`` (text) or
``schemaFile`` (a path relative to the file, inside its folder),
``relationships`` (one string, one relationship per line, ``//`` comments),
``assertions`` (``assertTrue`` / ``assertFalse`` / ``assertCaveated`` lists of
``resource#permission@subject`` with an optional `` with {json}`` context) and
``validation`` (expected Expand results; checked once Expand exists).

Every problem names the file and line. Example::

    >>> from headwater.engine.validationfile import run_validation_text
    >>> report = run_validation_text('''
    ... schema: |
    ...   definition user {}
    ...   definition doc {
    ...     relation viewer: user
    ...   }
    ... relationships: doc:1#viewer@user:ann
    ... assertions:
    ...   assertTrue: ["doc:1#viewer@user:ann"]
    ...   assertFalse: ["doc:1#viewer@user:bob"]
    ... ''')
    >>> report.ok, len(report.assertions)
    (True, 2)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..dsl import DslError
from .api import Engine, Permissionship
from .errors import EngineError
from .relationships import Relationship, parse_object, parse_relationship, parse_subject
from .store import Operation, Update
from .store.memory import MemoryStore

__all__ = ["AssertionOutcome", "ValidationFileError", "ValidationReport", "load_validation_file",
           "run_validation_file", "run_validation_text"]

_KINDS = {"assertTrue": Permissionship.HAS_PERMISSION, "assertFalse": Permissionship.NO_PERMISSION,
          "assertCaveated": Permissionship.CONDITIONAL_PERMISSION}
_KNOWN_KEYS = {"schema", "schemaFile", "relationships", "assertions", "validation"}
_BATCH = 1000


class ValidationFileError(Exception):
    """The file cannot be loaded (bad YAML, bad keys, schema error, bad relationship); names file and line."""

    def __init__(self, message: str, path: str, line: int = 0) -> None:
        self.message, self.path, self.line = message, path, line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class AssertionOutcome:
    """One assertion: what the file expects and what the engine answered."""

    kind: str  # assertTrue / assertFalse / assertCaveated
    text: str
    line: int
    expected: str
    actual: str  # a Permissionship name, or "ERROR"
    missing_context: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.expected == self.actual

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assertion": self.text, "line": self.line, "expected": self.expected,
                "actual": self.actual, "passed": self.passed, "missing_context": list(self.missing_context),
                "error": self.error}


@dataclass
class ValidationReport:
    """The result of running one validation file."""

    path: str
    assertions: list[AssertionOutcome] = field(default_factory=list)
    load_error: ValidationFileError | None = None
    relationships: int = 0
    validation_entries: int = 0  # `validation:` entries present (checked once Expand exists)

    @property
    def failures(self) -> list[AssertionOutcome]:
        return [a for a in self.assertions if not a.passed]

    @property
    def ok(self) -> bool:
        return self.load_error is None and not self.failures


@dataclass
class _Loaded:
    path: str
    schema_text: str | None
    schema_line: int
    relationships: list[tuple[Relationship, int]]
    assertions: list[tuple[str, str, int]]
    validation_entries: int


def _line_of(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _mapping_nodes(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def default_root(path: str | Path) -> Path:
    """The folder a ``schemaFile`` must stay inside: the current directory if the file is under it, else the
    file's own folder."""
    file = Path(path).resolve()
    cwd = Path.cwd().resolve()
    return cwd if cwd in file.parents else file.parent


def load_validation_file(path: str | Path, *, root: str | Path | None = None) -> list[_Loaded]:
    """Parse a validation file (all its YAML documents) without touching any engine.

    A ``schemaFile`` is read relative to the file and must stay inside ``root``
    (default: :func:`default_root`), so a validation file cannot read arbitrary files.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFileError(f"cannot read: {exc}", str(path)) from None
    return _parse(text, str(path), p.parent, Path(root) if root is not None else default_root(p))


def _parse(text: str, path: str, folder: Path | None, root: Path | None = None) -> list[_Loaded]:
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValidationFileError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path,
                                  mark.line + 1 if mark else 0) from None
    out = []
    for node, doc in zip(nodes, docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValidationFileError("a validation file must be a mapping with `schema`, `relationships`, "
                                      "`assertions`", path, _line_of(node))
        out.append(_parse_doc(doc, node, text, path, folder, root))
    if not out:
        raise ValidationFileError("the file is empty", path)
    return out


def _parse_doc(doc: dict[str, Any], node: yaml.Node, text: str, path: str, folder: Path | None,
               root: Path | None) -> _Loaded:
    keys = _mapping_nodes(node)
    unknown = sorted(set(doc) - _KNOWN_KEYS)
    if unknown:
        legacy = {"namespace_configs", "validation_tuples"} & set(unknown)
        hint = " (this is the legacy format; write `schema` and `relationships` instead)" if legacy else ""
        raise ValidationFileError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{hint}",
                                  path, _line_of(keys[unknown[0]][0]))
    if "schema" in doc and "schemaFile" in doc:
        raise ValidationFileError("give either `schema` or `schemaFile`, not both", path,
                                  _line_of(keys["schemaFile"][0]))
    schema_text, schema_line = None, 0
    if "schema" in doc:
        schema_text = doc["schema"]
        value_node = keys["schema"][1]
        # A block scalar (`|` or `>`) starts on the line after its indicator.
        schema_line = _line_of(value_node) + (1 if getattr(value_node, "style", None) in ("|", ">") else 0)
        if not isinstance(schema_text, str):
            raise ValidationFileError("`schema` must be a string", path, _line_of(keys["schema"][0]))
    elif "schemaFile" in doc:
        schema_text = _read_schema_file(doc["schemaFile"], path, folder, root, _line_of(keys["schemaFile"][0]))
        schema_line = 1
    rels = _parse_relationships(doc.get("relationships"), keys.get("relationships"), text, path)
    assertions = _parse_assertions(doc.get("assertions"), keys.get("assertions"), path)
    validation = doc.get("validation")
    entries = sum(len(v or []) for v in validation.values()) if isinstance(validation, dict) else 0
    return _Loaded(path, schema_text, schema_line, rels, assertions, entries)


def _read_schema_file(name: Any, path: str, folder: Path | None, root: Path | None, line: int) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationFileError("`schemaFile` must be a file name", path, line)
    if folder is None or root is None:
        raise ValidationFileError("`schemaFile` needs a file on disk to be relative to", path, line)
    base = root.resolve()
    target = (folder.resolve() / name).resolve()
    if Path(name).is_absolute() or base not in target.parents:
        raise ValidationFileError(f"`schemaFile` {name!r} is outside {base} (use a path inside it, or pass "
                                  "another root)", path, line)
    try:
        return target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationFileError(f"`schemaFile` {name!r} not found", path, line) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFileError(f"cannot read `schemaFile` {name!r}: {exc}", path, line) from None


def _parse_relationships(value: Any, nodes: tuple[yaml.Node, yaml.Node] | None, text: str,
                         path: str) -> list[tuple[Relationship, int]]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise ValidationFileError("`relationships` must be one string, one relationship per line", path,
                                  _line_of(nodes[0]) if nodes else 0)
    source_lines = text.splitlines()
    start = nodes[1].start_mark.line if nodes else 0
    out: list[tuple[Relationship, int]] = []
    seen: dict[Any, int] = {}
    cursor = start
    for raw in value.splitlines():
        line_text = raw.strip()
        if not line_text or line_text.startswith("//"):
            continue
        line = _find_line(source_lines, line_text, cursor)
        cursor = max(cursor, line)
        try:
            rel = parse_relationship(line_text)
        except EngineError as exc:
            raise ValidationFileError(str(exc), path, line) from None
        if rel.key in seen:
            raise ValidationFileError(f"repeated relationship {line_text!r} (first on line {seen[rel.key]})",
                                      path, line)
        seen[rel.key] = line
        out.append((rel, line))
    return out


def _find_line(lines: Sequence[str], needle: str, start: int) -> int:
    for i in range(start, len(lines)):
        if lines[i].strip() == needle:
            return i + 1
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return start + 1


def _parse_assertions(value: Any, nodes: tuple[yaml.Node, yaml.Node] | None,
                      path: str) -> list[tuple[str, str, int]]:
    if value is None:
        return []
    if not isinstance(value, dict) or nodes is None:
        raise ValidationFileError("`assertions` must map assertTrue/assertFalse/assertCaveated to lists", path,
                                  _line_of(nodes[0]) if nodes else 0)
    out = []
    for key, (knode, vnode) in _mapping_nodes(nodes[1]).items():
        if key not in _KINDS:
            raise ValidationFileError(f"unknown assertion kind `{key}`; use assertTrue, assertFalse or "
                                      "assertCaveated", path, _line_of(knode))
        if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "null", "~"):
            continue
        if not isinstance(vnode, yaml.SequenceNode):
            raise ValidationFileError(f"`{key}` must be a list", path, _line_of(knode))
        for item in vnode.value:
            if not isinstance(item, yaml.ScalarNode):
                raise ValidationFileError(f"each `{key}` entry must be a string", path, _line_of(item))
            out.append((key, item.value, _line_of(item)))
    return out


def _load_into(engine: Engine, loaded: _Loaded) -> None:
    if loaded.schema_text is not None:
        try:
            engine.write_schema(loaded.schema_text)
        except DslError as exc:
            line = loaded.schema_line + exc.line - 1 if exc.line and loaded.schema_line else loaded.schema_line
            raise ValidationFileError(f"schema error at schema line {exc.line}, column {exc.column}: "
                                      f"{exc.message}", loaded.path, line) from None
    rels = loaded.relationships
    for i in range(0, len(rels), _BATCH):
        chunk = rels[i:i + _BATCH]
        try:
            engine.write([Update(Operation.TOUCH, r) for r, _ in chunk])
        except EngineError as exc:
            # Find the offending relationship for a precise line.
            for r, line in chunk:
                try:
                    engine.write([Update(Operation.TOUCH, r)])
                except EngineError as one:
                    raise ValidationFileError(str(one), loaded.path, line) from None
            raise ValidationFileError(str(exc), loaded.path, chunk[0][1]) from None


def _run_assertion(engine: Engine, kind: str, text: str, line: int) -> AssertionOutcome:
    expected = _KINDS[kind].name
    check, _, ctx_text = text.partition(" with ")
    try:
        context = json.loads(ctx_text) if ctx_text.strip() else None
        if context is not None and not isinstance(context, dict):
            raise ValueError("the context after `with` must be a JSON object")
        resource_part, _, subject_part = check.strip().partition("@")
        resource_text, _, permission = resource_part.partition("#")
        if not subject_part or not permission:
            raise ValueError("expected `resource#permission@subject`")
        result = engine.check(parse_object(resource_text), permission, parse_subject(subject_part),
                              context=context)
    except (EngineError, ValueError) as exc:
        return AssertionOutcome(kind, text, line, expected, "ERROR", error=str(exc))
    return AssertionOutcome(kind, text, line, expected, result.permissionship.name, result.missing_context)


def run_validation_file(paths: str | Path | Sequence[str | Path], *, root: str | Path | None = None,
                        engine_factory: Any = None) -> ValidationReport:
    """Load one file (or several, into one engine, in order) and run every assertion."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    label = ", ".join(str(p) for p in paths)
    report = ValidationReport(label)
    engine = engine_factory() if engine_factory else Engine(MemoryStore())
    try:
        loaded = [doc for p in paths for doc in load_validation_file(p, root=root)]
        for doc in loaded:
            _load_into(engine, doc)
            report.relationships += len(doc.relationships)
            report.validation_entries += doc.validation_entries
    except ValidationFileError as exc:
        report.load_error = exc
        return report
    for doc in loaded:
        for kind, text, line in doc.assertions:
            report.assertions.append(_run_assertion(engine, kind, text, line))
    return report


def run_validation_text(text: str, *, path: str = "<text>") -> ValidationReport:
    """Run a validation file given as text (``schemaFile`` is not available)."""
    report = ValidationReport(path)
    engine = Engine(MemoryStore())
    try:
        loaded = _parse(text, path, None)
        for doc in loaded:
            _load_into(engine, doc)
            report.relationships += len(doc.relationships)
    except ValidationFileError as exc:
        report.load_error = exc
        return report
    for doc in loaded:
        for kind, t, line in doc.assertions:
            report.assertions.append(_run_assertion(engine, kind, t, line))
    return report
