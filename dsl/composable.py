"""Composable schemas: ``import`` and ``partial`` flattened into one schema, as zed's ``schema compile`` does.

SpiceDB's composable-schema syntax (zed ``schema compile``, now in SpiceDB's own
``pkg/schemadsl``) adds three things, each behind a ``use`` flag at the top of the
file that writes it:

* ``use import`` + ``import "sub/file.zed"``: every definition, caveat and
  classification of another file, read relative to the importing file. A path
  may not be absolute nor contain ``..`` (zed refuses both), so every file stays
  inside the root file's folder. A file imported twice (a diamond) is read once;
  an import cycle is an error.
* ``use partial`` + ``partial name { members }``: relations and permissions
  that belong to no definition by themselves;
* ``...name`` in a definition (or a partial): the members of partial ``name``,
  spliced in at that place. Partials may splice other partials, in any order,
  but not in a cycle; a partial no definition uses is dropped.

The result is one schema, as zed prints it: the ``use`` flags of every file once
(``import`` and ``partial`` dropped), then the items of the imported files (depth
first, each file before the file that imports it), then the root file's own
items, with every ``...name`` replaced by its members. Comments on definitions and
members are kept; those on imports, partials and ``...name`` are dropped.

Schema text given without files (the API, gRPC, stdin) may use partials, as
SpiceDB's WriteSchema accepts them, but not imports, which SpiceDB refuses there
too: :func:`compile_schema` reports each ``import`` precisely.
:func:`read_schema_files` reads a root file and everything it imports.

Every error names the file, line and column it comes from. To know the file of a
position the compiler derives, each imported file's positions are moved to a
range of offsets of its own (file ``k`` starts at ``k << 40``; lines and columns
are left as written): whatever span the compiler builds from a node keeps the
offset, and ``_Files.locate`` turns it back into (file, span).

Example::

    >>> from headwater.dsl import compile_schema
    >>> s = compile_schema('''use partial
    ... partial viewable {
    ...     relation viewer: user
    ...     permission view = viewer
    ... }
    ... definition user {}
    ... definition document {
    ...     ...viewable
    ... }''')
    >>> sorted(s.definitions["document"].relations), sorted(s.definitions["document"].permissions)
    (['viewer'], ['view'])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast, compiler
from .ast import Span
from .compiler import LintWarning
from .errors import (
    DslError,
    DuplicateNameError,
    PartialError,
    SchemaError,
    SchemaImportError,
    SchemaLimitError,
    UseFlagError,
)
from .format import format_schema
from .limits import SchemaLimits
from .parser import parse_schema
from .schema import Schema

__all__ = ["SchemaFiles", "compile_schema", "lint_schema", "read_schema_files"]

_SHIFT = 40  # file k's offsets start at k << _SHIFT (a file is far smaller than 2**40 characters)
_COMPOSABLE_FLAGS = ("import", "partial")
_MAX_IMPORT_DEPTH = 100  # files importing files this deep: far beyond any real schema, well within Python's stack
_NO_FILES = ("`import` needs files: SpiceDB's WriteSchema refuses imports too. Compile the root file with "
             "`headwater schema write FILE` (or `lint FILE`, or a validation file's `schemaFile`), which reads "
             "the files it imports")


def compile_schema(source: str | ast.Document, *, filename: str | None = None,
                   limits: SchemaLimits | None = None) -> Schema:
    """Compile schema text (or a parsed document), splicing its partials; raises :class:`DslError` on any problem,
    including an ``import`` (text has no files to import: see :func:`read_schema_files`)."""
    return lint_schema(source, filename=filename, limits=limits)[0]


def lint_schema(source: str | ast.Document, *, filename: str | None = None, limits: SchemaLimits | None = None
                ) -> tuple[Schema, list[LintWarning]]:
    """Compile like :func:`compile_schema` and also return the warnings."""
    limits = limits if limits is not None else SchemaLimits()
    text = source if isinstance(source, str) else ""
    doc = parse_schema(source, filename=filename, limits=limits) if isinstance(source, str) else source
    files = _Files([filename or ""], [text])
    if _is_composable(doc):
        for item in doc.items:
            if isinstance(item, ast.ImportStatement):
                files.error(SchemaImportError, _NO_FILES, item.span)
        _check_file(files, doc, composed=False)
        doc = _flatten(files, [item for item in doc.items if not isinstance(item, ast.ImportStatement)],
                       doc.trailing_comments)
        files.raise_errors()
    return files.compile(doc, limits)


@dataclass(frozen=True, slots=True)
class SchemaFiles:
    """A root schema file and the files it imports, read and flattened into one schema (zed's ``schema compile``).

    ``texts`` maps each file's name (as given for the root, joined to it for the others) to its text, in the
    order read; ``text`` is the flattened schema in canonical form, what ``zed schema compile`` would write.
    """

    root: str
    texts: dict[str, str]
    imports: bool  # whether the root file imports others (else the root's text is the whole schema)
    _document: ast.Document = field(repr=False)  # flattened; imported files' offsets moved (module docstring)

    @property
    def text(self) -> str:
        """The flattened schema as canonical text."""
        return format_schema(self._document)

    def compile(self, limits: SchemaLimits | None = None) -> Schema:
        """The compiled schema; raises :class:`DslError`, each error located in its file."""
        return self.lint(limits)[0]

    def lint(self, limits: SchemaLimits | None = None) -> tuple[Schema, list[tuple[str, LintWarning]]]:
        """The compiled schema and its warnings, each with the name of its file."""
        files = _Files(list(self.texts), list(self.texts.values()))
        limits = limits if limits is not None else SchemaLimits()
        schema, warnings = files.compile(self._document, limits)
        out = []
        for w in warnings:
            index, span = files.locate(w.span)
            out.append((files.names[index], dataclasses.replace(w, span=span)))
        return schema, out


def read_schema_files(path: str | os.PathLike[str], *, limits: SchemaLimits | None = None) -> SchemaFiles:
    """Read the schema file at ``path`` and, depth first, every file it imports; flatten them into one schema.

    Raises :class:`DslError` for any problem (the first; all of them in ``errors``), each located in the file it
    comes from: a file that does not parse, an import that cannot be followed, a misplaced or missing ``use``
    flag, a partial problem. ``OSError`` if the root file itself cannot be read. Compile the result with
    :meth:`SchemaFiles.compile`.

    Example::

        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "users.zed").write_text("definition user {}")
        >>> _ = (folder / "root.zed").write_text('use import\\nimport "users.zed"\\n'
        ...                                      'definition doc {\\n relation owner: user\\n}')
        >>> print(read_schema_files(folder / "root.zed").text)
        definition user {}
        <BLANKLINE>
        definition doc {
            relation owner: user
        }
        <BLANKLINE>
    """
    limits = limits if limits is not None else SchemaLimits()
    root = Path(path)
    text = root.read_text(encoding="utf-8")
    reader = _Reader(_Files([str(path)], [text]), limits, root.resolve().parent)
    doc = reader.read_root(root.resolve(), text)
    files = reader.files
    if len(files.names) > 1:
        for each in reader.documents:
            _check_lexical_flags(files, each)
    files.raise_errors()
    assert doc is not None  # it parsed, or raise_errors raised
    document = doc
    if _is_composable(doc):
        document = _flatten(files, reader.flags + reader.items, doc.trailing_comments)
        files.raise_errors()
    imports = any(isinstance(i, ast.ImportStatement) for i in doc.items)
    return SchemaFiles(str(path), dict(zip(files.names, files.texts)), imports, document)


# ---------------------------------------------------------------- files and positions


class _Files:
    """The files of one compile (index 0 is the root) and the problems found so far, located by ``locate``."""

    def __init__(self, names: list[str], texts: list[str]) -> None:
        self.names = names
        self.texts = texts
        self.errors: list[DslError] = []

    def add(self, name: str, text: str) -> int:
        self.names.append(name)
        self.texts.append(text)
        return len(self.names) - 1

    def error(self, cls: type[SchemaError], message: str, span: Span) -> None:
        self.errors.append(cls(message, span))

    def locate(self, span: Span) -> tuple[int, Span]:
        """The index of the file ``span`` lies in, and the span as written in that file."""
        index = span.start >> _SHIFT
        if not index:
            return 0, span
        base = index << _SHIFT
        return index, dataclasses.replace(span, start=span.start - base, end=span.end - base)

    def where(self, span: Span, here: Span) -> str:
        """``line N`` when ``span`` is in the same file as ``here``, else ``file:N``."""
        index, real = self.locate(span)
        return f"line {real.line}" if index == self.locate(here)[0] else f"{self.names[index]}:{real.line}"

    def raise_errors(self, more: list[DslError] | None = None) -> None:
        """Raise the first problem found (all of them in ``errors``), each with its file, if there is one."""
        errors = self.errors + (more or [])
        if not errors:
            return
        keyed = []
        for e in errors:
            if e.source and e.filename in self.names:  # located by the parser already
                index = self.names.index(e.filename)
            else:
                index, e.span = self.locate(e.span)
                e.with_source(self.texts[index], self.names[index] or None)
            keyed.append(((index, e.span.line, e.span.column), e))
        ordered = [e for _, e in sorted(keyed, key=lambda pair: pair[0])]
        ordered[0].errors = tuple(ordered)
        raise ordered[0]

    def compile(self, doc: ast.Document, limits: SchemaLimits) -> tuple[Schema, list[LintWarning]]:
        try:
            return compiler.lint_schema(doc, limits=limits)
        except DslError as exc:
            self.raise_errors(list(exc.errors))
            raise  # not reached: raise_errors raised


def _shift(node: Any, delta: int) -> Any:
    """``node`` with every span's offsets moved by ``delta`` (frozen dataclasses, tuples and spans, recursively)."""
    if isinstance(node, Span):
        return dataclasses.replace(node, start=node.start + delta, end=node.end + delta) if node.line else node
    if isinstance(node, tuple):
        return tuple(_shift(x, delta) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: _shift(getattr(node, f.name), delta) for f in dataclasses.fields(node)}
        return dataclasses.replace(node, **changes)
    return node


# ---------------------------------------------------------------- reading files


class _Reader:
    """Reads a root file and, depth first, the files it imports (each once), collecting their items in zed's order."""

    def __init__(self, files: _Files, limits: SchemaLimits, folder: Path) -> None:
        self.files = files
        self.limits = limits
        self.folder = folder  # the root file's folder: no file is read outside it
        self.flags: list[ast.TopLevel] = []  # the first `use` of each flag, root file first
        self.items: list[ast.TopLevel] = []  # every other item, each file after the files it imports
        self.read: dict[Path, str] = {}  # every file read: its name
        self.documents: list[ast.Document] = []  # every file that parses (offsets moved)
        self.size = 0
        self.size_reported = False

    def read_root(self, path: Path, text: str) -> ast.Document | None:
        self.read[path] = self.files.names[0]
        return self._read_file(0, path, text, [path])

    def _read_file(self, index: int, path: Path, text: str, chain: list[Path]) -> ast.Document | None:
        """Parse one file, follow its imports, then collect its items; None if it does not parse."""
        self.size += len(text.encode("utf-8", "surrogatepass"))
        try:
            doc = parse_schema(text, filename=self.files.names[index], limits=self.limits)
        except DslError as exc:
            self.files.errors.extend(exc.errors)
            return None
        if index:
            doc = _shift(doc, index << _SHIFT)
        if index or _is_composable(doc):  # a plain root file alone is compiled as written
            _check_file(self.files, doc, composed=True)
        self.documents.append(doc)
        known = {f.name for f in self.flags if isinstance(f, ast.UseFlag)}
        for item in doc.items:
            if isinstance(item, ast.UseFlag) and item.name not in known and item.name not in _COMPOSABLE_FLAGS:
                self.flags.append(item)
                known.add(item.name)
        for item in doc.items:
            if isinstance(item, ast.ImportStatement):
                self._follow(index, path, item, chain)
        self.items.extend(i for i in doc.items if not isinstance(i, (ast.UseFlag, ast.ImportStatement)))
        return doc

    def _follow(self, index: int, importer: Path, stmt: ast.ImportStatement, chain: list[Path]) -> None:
        """Read the file ``stmt`` imports (unless read already), reporting why it cannot be at ``stmt``."""
        files, where = self.files, stmt.path_span
        problem = _path_problem(stmt.path)
        if problem:
            files.error(SchemaImportError, problem, where)
            return
        name = os.path.normpath(os.path.join(os.path.dirname(files.names[index]), stmt.path))
        target = (importer.parent / stmt.path).resolve()
        if self.folder != target and self.folder not in target.parents:
            files.error(SchemaImportError, f"import path `{stmt.path}` leads outside {self.folder}, the folder of "
                        "the root file (through a symbolic link); imported files must stay inside it", where)
            return
        if target in chain:
            cycle = " imports ".join(f"`{self.read[p]}`" for p in chain[chain.index(target):] + [target])
            files.error(SchemaImportError, f"import cycle: {cycle}", where)
            return
        if target in self.read:
            return  # imported before (a diamond): its items are in already, once
        if len(chain) > _MAX_IMPORT_DEPTH:
            files.error(SchemaImportError, f"imports nested more than {_MAX_IMPORT_DEPTH} files deep", where)
            return
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            files.error(SchemaImportError, f"imported file `{name}` not found", where)
            return
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            files.error(SchemaImportError, f"cannot read imported file `{name}`: {reason}", where)
            return
        self.read[target] = name
        self._read_file(files.add(name, text), target, text, chain + [target])
        if self.size > self.limits.max_schema_bytes and not self.size_reported:
            self.size_reported = True
            files.errors.append(SchemaLimitError(
                f"schema too large: the files read so far hold {self.size:,} bytes, more than the limit of "
                f"{self.limits.max_schema_bytes:,} bytes (max_schema_bytes)", where))


def _path_problem(path: str) -> str | None:
    """Why zed refuses the import path ``path``, or None."""
    if not path:
        return "the import path is empty"
    if path.startswith(("/", "\\")) or Path(path).is_absolute():
        return f"import path `{path}` is absolute; write it relative to this file"
    if ".." in Path(path.replace("\\", "/")).parts:
        return (f"import path `{path}` contains `..`; imported files must stay inside the folder of the file that "
                "imports them (as zed requires)")
    return None


def _check_file(files: _Files, doc: ast.Document, *, composed: bool) -> None:
    """One file's own rules: its `use` flags before its definitions, and `import` and `partial` after their flags."""
    flags = {i.name for i in doc.items if isinstance(i, ast.UseFlag)}
    seen_definition = False
    for item in doc.items:
        if isinstance(item, ast.UseFlag):
            if seen_definition:
                files.error(UseFlagError, f"`use {item.name}` must come before any definition or caveat", item.span)
        elif isinstance(item, ast.ImportStatement):
            if "import" not in flags and composed:
                files.error(UseFlagError, "`import` needs `use import` at the top of this file", item.span)
        elif isinstance(item, ast.Partial):
            if "partial" not in flags:
                files.error(UseFlagError, "`partial` needs `use partial` at the top of this file", item.span)
        else:
            seen_definition = True  # zed: imports and partials may come before `use` lines


def _check_lexical_flags(files: _Files, doc: ast.Document) -> None:
    """zed reads each file with its own flags: in a composed schema, `with expiration` and `self` need the flag in
    the file that writes them (the compiled schema has every file's flags, which would hide the difference)."""
    flags = {i.name for i in doc.items if isinstance(i, ast.UseFlag)}
    why = "(in a composed schema, each file enables the flags it uses)"
    for item in doc.items:
        if not isinstance(item, (ast.Definition, ast.Partial)):
            continue
        for m in item.members:
            allowed = getattr(m, "allowed", None) or getattr(m, "annotation", None) or ()
            for a in allowed:
                if "expiration" in a.with_names[-1:] and "expiration" not in flags:
                    files.error(UseFlagError, f"`with expiration` needs `use expiration` at the top of this file {why}",
                                a.with_spans[-1] if a.with_spans else a.span)
            if isinstance(m, ast.Permission) and "self" not in flags:
                for term in _terms(m.expr):
                    if isinstance(term, ast.SelfRef):
                        files.error(UseFlagError, f"`self` needs `use self` at the top of this file {why}", term.span)


def _terms(expr: ast.Expr) -> Iterator[ast.Expr]:
    """Every sub-expression of ``expr``, without recursion."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, (ast.Union, ast.Intersection, ast.Exclusion)):
            stack.extend((e.right, e.left))
        elif isinstance(e, ast.Arrow):
            stack.append(e.left)


def _is_composable(doc: ast.Document) -> bool:
    """Whether ``doc`` writes anything of the composable syntax (else it compiles as it is)."""
    for item in doc.items:
        if isinstance(item, (ast.ImportStatement, ast.Partial)):
            return True
        if isinstance(item, ast.UseFlag) and item.name in _COMPOSABLE_FLAGS:
            return True
        if isinstance(item, ast.Definition) and any(isinstance(m, ast.PartialReference) for m in item.members):
            return True
    return False


# ---------------------------------------------------------------- partials


def _flatten(files: _Files, items: list[ast.TopLevel], trailing: tuple[ast.Comment, ...]) -> ast.Document:
    """One document without imports or partials: `use` lines first (once each, the composable flags dropped), then
    the other items in order, each ``...name`` replaced by the members of partial ``name``."""
    flags: dict[str, ast.TopLevel] = {}
    partials: dict[str, ast.Partial] = {}
    named: dict[str, ast.TopLevel] = {}
    out: list[ast.TopLevel] = []
    for item in items:
        if isinstance(item, ast.ImportStatement):
            continue
        if isinstance(item, ast.UseFlag):
            if item.name not in _COMPOSABLE_FLAGS:
                flags.setdefault(item.name, item)
            continue
        first = partials.get(item.name) or named.get(item.name)
        if first is not None and (isinstance(item, ast.Partial) or isinstance(first, ast.Partial)
                                  or files.locate(first.name_span)[0] != files.locate(item.name_span)[0]):
            # (two items of one file with one name: the compiler reports it, as for any schema)
            files.error(DuplicateNameError, f"the name `{item.name}` is already used by the {_kind(first)} at "
                        f"{files.where(first.name_span, item.name_span)}", item.name_span)
            continue
        if isinstance(item, ast.Partial):
            partials[item.name] = item
        else:
            named.setdefault(item.name, item)
            out.append(item)
    expanded = _expand(files, partials, named)
    out = [_splice(files, item, expanded, named) if isinstance(item, ast.Definition) else item for item in out]
    return ast.Document(tuple(flags.values()) + tuple(out), trailing)


def _kind(item: ast.TopLevel) -> str:
    return {ast.Partial: "partial", ast.Definition: "definition", ast.Caveat: "caveat"}.get(type(item),
                                                                                          "classification")


def _unknown(files: _Files, ref: ast.PartialReference, named: dict[str, ast.TopLevel]) -> None:
    other = named.get(ref.name)
    hint = f": `{ref.name}` is a {_kind(other)}, and `...` splices only partials" if other is not None else ""
    files.error(PartialError, f"unknown partial `{ref.name}`{hint}", ref.name_span)


def _expand(files: _Files, partials: dict[str, ast.Partial], named: dict[str, ast.TopLevel]
            ) -> dict[str, tuple[ast.Member, ...]]:
    """Each partial's members with the partials it splices spliced in, depth first without recursion; a
    reference to an unknown partial, or one that closes a cycle, is reported and left out."""
    expanded: dict[str, tuple[ast.Member, ...]] = {}
    for start in partials:
        path: list[str] = []  # the partials being expanded, outermost first
        stack: list[tuple[str, int]] = [(start, 0)]  # (partial, index of its next member to look at)
        while stack:
            name, i = stack.pop()
            if i == 0:
                if name in expanded:
                    continue
                path.append(name)
            members = partials[name].members
            while i < len(members):
                m = members[i]
                i += 1
                if not isinstance(m, ast.PartialReference) or m.name in expanded:
                    continue
                if m.name not in partials:
                    _unknown(files, m, named)
                elif m.name in path:
                    cycle = " → ".join(f"`{p}`" for p in path[path.index(m.name):] + [m.name])
                    files.error(PartialError, f"partials splice each other in a cycle: {cycle}", m.name_span)
                else:
                    stack.extend([(name, i), (m.name, 0)])  # expand the inner partial first, then come back
                    break
            else:
                expanded[name] = tuple(x for m in members
                                       for x in (expanded.get(m.name, ()) if isinstance(m, ast.PartialReference)
                                                 else (m,)))
                path.pop()
    return expanded


def _splice(files: _Files, d: ast.Definition, expanded: dict[str, tuple[ast.Member, ...]],
            named: dict[str, ast.TopLevel]) -> ast.Definition:
    """``d`` with each ``...name`` replaced by the members of partial ``name``; a member whose name is taken already
    is reported (at the ``...name`` that brings it) and left out."""
    if not any(isinstance(m, ast.PartialReference) for m in d.members):
        return d
    members: list[ast.Member] = []
    seen: dict[str, tuple[ast.Member, ast.PartialReference | None]] = {}
    for m in d.members:
        if not isinstance(m, ast.PartialReference):
            members.append(m)
            seen.setdefault(m.name, (m, None))
            continue
        if m.name not in expanded:
            _unknown(files, m, named)
            continue
        for pm in expanded[m.name]:
            if pm.name in seen:
                first, via = seen[pm.name]
                how = f"`...{via.name}` at {files.where(via.span, m.span)}" if via is not None else \
                    files.where(first.name_span, m.span)
                where = pm.name_span if via is m else m.span
                files.error(DuplicateNameError, f"duplicate relation or permission `{pm.name}` in definition "
                            f"`{d.name}`: `...{m.name}` adds it, and it is already there ({how})", where)
                continue
            seen[pm.name] = (pm, m)
            members.append(pm)
    return dataclasses.replace(d, members=tuple(members))
