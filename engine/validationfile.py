"""SpiceDB validation files: load a schema and relationships, run the assertions (``headwater validate``).

Format (the same files SpiceDB's tools read): top-level keys ``schema`` (text) or
``schemaFile`` (a path relative to the file, inside its folder; a schema file may import
others, as zed's composable schemas do),
``relationships`` (one string, one relationship per line, ``//`` comments),
``assertions`` (``assertTrue`` / ``assertFalse`` / ``assertCaveated`` lists of
``resource#permission@subject`` with an optional `` with {json}`` context) and
``validation`` (expected subjects of Expand, see below).

A ``validation`` block maps ``resource#relation`` to the exact list of terminal
subjects that Expand finds, each written ``[subject] is <res#rel>/<res#rel>...``:
the subject (``user:tom``; ``user:tom[...]`` when only a caveat grants it;
``user:* - {user:a, user:b}`` for a wildcard with excluded subjects) and every
``resource#relation`` whose relationships reach it. The subjects are computed from
the Expand tree with SpiceDB's membership rules
(:func:`~headwater.engine.expand.found_subjects`) and compared as SpiceDB's
developer tools do (``pkg/development/validation.go``): every listed subject is
found, with the same relation set (sorted, exact), the same exclusions (wildcards
only) and the same caveat mark, and every found subject is listed.

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
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..dsl import DslError, SchemaLimits, parse_schema, read_schema_files
from ..dsl.ast import ImportStatement
from .api import Engine
from .errors import EngineError, ValidationFileError
from .membership import FoundSubject, found_subjects
from .results import Permissionship
from .relationships import ObjectRef, Relationship, SubjectRef, parse_object, parse_relationship, parse_subject
from .store import Operation, Update
from .store.memory import MemoryStore

__all__ = ["AssertionOutcome", "ValidationFileError", "ValidationOutcome", "ValidationReport", "load_validation_file",
           "run_validation_file", "run_validation_text", "write_relationships"]

_KINDS = {"assertTrue": Permissionship.HAS_PERMISSION, "assertFalse": Permissionship.NO_PERMISSION,
          "assertCaveated": Permissionship.CONDITIONAL_PERMISSION}
_KNOWN_KEYS = {"schema", "schemaFile", "relationships", "assertions", "validation"}
_BATCH = 1000


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


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    """One entry of a ``validation:`` block, or a subject Expand found that no entry lists: expected vs actual.

    ``expected`` is the entry as written (None for a found subject that is not listed);
    ``actual`` is what Expand found for that subject in the same form (None when not found).
    """

    path: str  # the file the entry is in
    line: int
    resource: str  # the block's key, e.g. document:1#view
    expected: str | None
    actual: str | None
    problems: tuple[str, ...] = ()
    error: str | None = None  # Expand itself failed (unknown relation, depth exceeded, ...)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.problems

    @property
    def message(self) -> str:
        """What is wrong, naming the expected and the actual entry (empty when it passed)."""
        if self.error is not None:
            return f"validation of {self.resource}: error: {self.error}"
        if self.passed:
            return ""
        return (f"validation of {self.resource}: expected {self.expected or '(not listed)'}, "
                f"found {self.actual or '(nothing)'}: {'; '.join(self.problems)}")

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.path, "line": self.line, "resource": self.resource, "expected": self.expected,
                "actual": self.actual, "passed": self.passed, "problems": list(self.problems), "error": self.error}


@dataclass
class ValidationReport:
    """The result of running one validation file."""

    path: str
    assertions: list[AssertionOutcome] = field(default_factory=list)
    load_error: ValidationFileError | None = None
    relationships: int = 0
    validations: list[ValidationOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[AssertionOutcome]:
        return [a for a in self.assertions if not a.passed]

    @property
    def validation_failures(self) -> list[ValidationOutcome]:
        return [v for v in self.validations if not v.passed]

    @property
    def ok(self) -> bool:
        return self.load_error is None and not self.failures and not self.validation_failures


@dataclass(frozen=True, slots=True)
class _ExpectedSubject:
    """One parsed ``validation:`` entry: ``[subject] is <res#rel>/...``."""

    text: str
    line: int
    subject: SubjectRef
    caveated: bool
    excluded: tuple[str, ...]  # sorted, in validation-string form (``user:a``, ``user:b[...]``)
    relations: tuple[str, ...]  # sorted ``type:id#relation`` strings (duplicates kept, as SpiceDB compares)


@dataclass(frozen=True, slots=True)
class _ExpectedRelation:
    """One key of a ``validation:`` block with its expected subjects."""

    resource: ObjectRef
    name: str
    line: int
    subjects: tuple[_ExpectedSubject, ...]

    @property
    def key(self) -> str:
        return f"{self.resource}#{self.name}"


@dataclass
class _Loaded:
    path: str
    schema_text: str | None
    schema_line: int
    relationships: list[tuple[Relationship, int]]
    assertions: list[tuple[str, str, int]]
    validation: list[_ExpectedRelation]


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
    validation = _parse_validation(doc.get("validation"), keys.get("validation"), path)
    return _Loaded(path, schema_text, schema_line, rels, assertions, validation)


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
        text = target.read_text(encoding="utf-8")
        if not _imports(text):  # the whole schema: loaded as any schema text
            return text
        # A schema file that imports others (composable schemas) is loaded as the one schema they make together,
        # compiled here first so that an error names the file it is in.
        files = read_schema_files(os.path.normpath(os.path.join(os.path.dirname(path), name)),
                                  limits=SchemaLimits.unlimited())
        files.compile(SchemaLimits.unlimited())
        return files.text
    except FileNotFoundError:
        raise ValidationFileError(f"`schemaFile` {name!r} not found", path, line) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFileError(f"cannot read `schemaFile` {name!r}: {exc}", path, line) from None
    except DslError as exc:
        raise ValidationFileError(f"schema error in `schemaFile` {name!r}: {exc.render()}", path, line) from None


def _imports(text: str) -> bool:
    """Whether schema ``text`` has an ``import`` line (False if it does not parse: loading it says why)."""
    try:
        doc = parse_schema(text, limits=SchemaLimits.unlimited())
    except DslError:
        return False
    return any(isinstance(item, ImportStatement) for item in doc.items)


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


# ``[subject] is <res#rel>/<res#rel>``; inside the brackets SpiceDB's own pattern (blocks/expectedrelations.go):
# one subject, an optional ``[...]`` caveat mark, an optional `` - {excluded, ...}`` for a wildcard.
_ENTRY_RE = re.compile(r"\s*\[(?P<subject>.*)\]\s+is\s+(?P<resources><[^>]*>(?:\s*/\s*<[^>]*>)*)\s*")
_SUBJECT_RE = re.compile(r"(?P<subject>[^]\s]+)(?P<caveat>\[\.\.\.\])?(?:\s+-\s+\{(?P<excluded>[^}]+)\})?")
_ENTRY_FORM = "`[subject] is <resource#relation>` (several resources joined by `/`)"


def _parse_validation(value: Any, nodes: tuple[yaml.Node, yaml.Node] | None,
                      path: str) -> list[_ExpectedRelation]:
    if value is None or nodes is None:
        return []
    if not isinstance(value, dict):
        raise ValidationFileError("`validation` must map `resource#relation` keys to lists of expected subjects",
                                  path, _line_of(nodes[0]))
    out = []
    for key, (knode, vnode) in _mapping_nodes(nodes[1]).items():
        line = _line_of(knode)
        resource, name = _parse_onr(str(key), path, line, what="validation key")
        if isinstance(vnode, yaml.ScalarNode) and vnode.value in ("", "null", "~"):
            items: list[yaml.Node] = []
        elif isinstance(vnode, yaml.SequenceNode):
            items = list(vnode.value)
        else:
            raise ValidationFileError(f"`{key}` must be a list of {_ENTRY_FORM} entries", path, line)
        subjects = []
        for item in items:
            if not isinstance(item, yaml.ScalarNode):
                raise ValidationFileError(f"each `{key}` entry must be a string like {_ENTRY_FORM}", path,
                                          _line_of(item))
            subjects.append(_parse_expected_subject(item.value, path, _line_of(item)))
        out.append(_ExpectedRelation(resource, name, line, tuple(subjects)))
    return out


def _parse_expected_subject(text: str, path: str, line: int) -> _ExpectedSubject:
    entry = _ENTRY_RE.fullmatch(text)
    if entry is None:
        raise ValidationFileError(f"malformed validation entry {text!r}: expected {_ENTRY_FORM}", path, line)
    inner = entry["subject"].strip()
    parts = _SUBJECT_RE.fullmatch(inner)
    if parts is None:
        raise ValidationFileError(f"invalid subject `[{inner}]` in {text!r}: expected `[type:id]`, "
                                  "`[type:id#relation]`, `[type:id[...]]` or `[type:* - {type:a, type:b}]`", path,
                                  line)
    try:
        subject = parse_subject(parts["subject"])
        excluded = []
        for item in [i.strip() for i in parts["excluded"].split(",")] if parts["excluded"] else []:
            caveated = item.endswith("[...]")
            excluded.append(str(parse_subject(item.removesuffix("[...]").strip())) + ("[...]" if caveated else ""))
    except EngineError as exc:
        raise ValidationFileError(f"invalid subject in {text!r}: {exc}", path, line) from None
    relations = []
    for onr in re.findall(r"<([^>]*)>", entry["resources"]):
        resource, name = _parse_onr(onr, path, line, what=f"resource in {text!r}")
        relations.append(f"{resource}#{name}")
    return _ExpectedSubject(text, line, subject, parts["caveat"] is not None, tuple(sorted(excluded)),
                            tuple(sorted(relations)))


def _parse_onr(text: str, path: str, line: int, *, what: str) -> tuple[ObjectRef, str]:
    """``type:id#relation`` (a resource and one of its relations or permissions)."""
    object_text, hash_, relation = text.strip().partition("#")
    try:
        if not hash_ or not relation or relation == "...":
            raise ValueError("expected `type:id#relation`")
        resource = parse_object(object_text)
        SubjectRef(resource.type, resource.id, relation)  # checks the relation name
    except (EngineError, ValueError) as exc:
        raise ValidationFileError(f"invalid {what} `{text}`: {exc}", path, line) from None
    return resource, relation


def _load_into(engine: Engine, loaded: _Loaded) -> None:
    if loaded.schema_text is not None:
        try:
            engine.write_schema(loaded.schema_text)
        except DslError as exc:
            line = loaded.schema_line + exc.line - 1 if exc.line and loaded.schema_line else loaded.schema_line
            raise ValidationFileError(f"schema error at schema line {exc.line}, column {exc.column}: "
                                      f"{exc.message}", loaded.path, line) from None
    write_relationships(engine, loaded.path, loaded.relationships)


def write_relationships(engine: Engine, path: str, rels: Sequence[tuple[Relationship, int]], *,
                        actor: str | None = None, reason: str | None = None) -> str | None:
    """TOUCH a file's relationships (each with its line) into ``engine`` as trusted writes, in batches; the
    revision token after the last (None when there were none). A refused relationship (or any, before a schema
    is written) raises ValidationFileError at its line."""
    token = None
    size = min(_BATCH, engine.config.limits.max_updates_per_write)
    for i in range(0, len(rels), size):
        chunk = rels[i:i + size]
        try:
            token = engine.write([Update(Operation.TOUCH, r) for r, _ in chunk], trusted=True, actor=actor,
                                 reason=reason).token
        except EngineError as exc:
            # Find the offending relationship for a precise line.
            for r, line in chunk:
                try:
                    engine.write([Update(Operation.TOUCH, r)], trusted=True, actor=actor, reason=reason)
                except EngineError as one:
                    raise ValidationFileError(str(one), path, line) from None
            raise ValidationFileError(str(exc), path, chunk[0][1]) from None
    return token


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


def _run_validation(engine: Engine, path: str, expected: _ExpectedRelation) -> list[ValidationOutcome]:
    """Compare Expand's terminal subjects of one ``validation:`` key with the entries listed for it."""
    try:
        tree, _ = engine.expand(expected.resource, expected.name)
    except EngineError as exc:
        return [ValidationOutcome(path, expected.line, expected.key, None, None, error=str(exc))]
    found = {str(f.subject): f for f in found_subjects(tree)}
    out = []
    for entry in expected.subjects:
        f = found.get(str(entry.subject))
        if f is None:
            out.append(ValidationOutcome(path, entry.line, expected.key, entry.text, None,
                                         (f"subject {entry.subject} not found",)))
            continue
        out.append(ValidationOutcome(path, entry.line, expected.key, entry.text, _entry_text(f),
                                     tuple(_differences(entry, f))))
    listed = {str(entry.subject) for entry in expected.subjects}
    for key, f in found.items():
        if key not in listed:
            out.append(ValidationOutcome(path, expected.line, expected.key, None, _entry_text(f),
                                         (f"subject {f.subject} found but not listed",)))
    return out


def _differences(entry: _ExpectedSubject, found: FoundSubject) -> list[str]:
    problems = []
    relations = tuple(sorted(found.relations))
    if relations != entry.relations:
        problems.append(f"different relations: listed {_resources_text(entry.relations)}, found "
                        f"{_resources_text(relations)}")
    if found.subject.is_wildcard:
        excluded = tuple(sorted(x.validation_string() for x in found.excluded))
        if excluded != entry.excluded:
            problems.append(f"different excluded subjects: listed {{{', '.join(entry.excluded)}}}, found "
                            f"{{{', '.join(excluded)}}}")
    elif entry.excluded:
        problems.append(f"excluded subjects listed, but {found.subject} is not a wildcard")
    if found.caveated != entry.caveated:
        problems.append("caveat mismatch: found " + ("caveated (`[...]`)" if found.caveated else "without a caveat")
                        + ", listed " + ("caveated" if entry.caveated else "without `[...]`"))
    return problems


def _entry_text(found: FoundSubject) -> str:
    """A found subject as a validation entry: ``[user:tom[...]] is <doc:1#reader>/<doc:1#writer>``."""
    return f"[{found.validation_string()}] is {_resources_text(sorted(found.relations))}"


def _resources_text(relations: Sequence[str]) -> str:
    return "/".join(f"<{r}>" for r in relations)


def _run_checks(engine: Engine, loaded: list[_Loaded], report: ValidationReport) -> None:
    for doc in loaded:
        for kind, text, line in doc.assertions:
            report.assertions.append(_run_assertion(engine, kind, text, line))
    for doc in loaded:
        for expected in doc.validation:
            report.validations.extend(_run_validation(engine, doc.path, expected))


def run_validation_file(paths: str | Path | Sequence[str | Path], *, root: str | Path | None = None,
                        engine_factory: Any = None) -> ValidationReport:
    """Load one file (or several, into one engine, in order); run every assertion and ``validation:`` entry."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    engine = engine_factory() if engine_factory else Engine(MemoryStore())
    return _run(", ".join(str(p) for p in paths), engine,
                lambda: [doc for p in paths for doc in load_validation_file(p, root=root)])


def run_validation_text(text: str, *, path: str = "<text>") -> ValidationReport:
    """Run a validation file given as text (``schemaFile`` is not available)."""
    return _run(path, Engine(MemoryStore()), lambda: _parse(text, path, None))


def _run(label: str, engine: Engine, load: Any) -> ValidationReport:
    """Load the documents ``load`` reads into ``engine`` (a load error ends the report), then run their checks."""
    report = ValidationReport(label)
    try:
        loaded = load()
        for doc in loaded:
            _load_into(engine, doc)
            report.relationships += len(doc.relationships)
    except ValidationFileError as exc:
        report.load_error = exc
        return report
    _run_checks(engine, loaded, report)
    return report
