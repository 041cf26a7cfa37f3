"""Loading a validation file's schema and relationships into a store: ``serve --bootstrap`` and ``import FILE.yaml``.

A validation file (the YAML ``headwater validate`` runs: ``schema`` or ``schemaFile``, and
``relationships``) describes a whole store. Two commands load one:

- :func:`bootstrap` (``headwater serve --bootstrap FILE``, like SpiceDB's
  ``--datastore-bootstrap-files``): into an empty store at start-up, so a first run ends
  in an answer. The operator who starts the server is trusted, as SpiceDB trusts its
  bootstrap files: declassifications load without an authorization check, and the
  revisions record the actor ``bootstrap`` and the file as the reason. A restart over a
  store that already holds the file's schema and relationships loads nothing; a store
  that holds something else is refused (nothing is overwritten).
- :func:`load_into` (``headwater import FILE.yaml``): the schema (written unless the
  store already holds the same text) and then the relationships through
  :meth:`~.api.Engine.import_relationships`, in atomic batches, with its
  ``existing`` mode (``touch``/``skip`` make a re-run safe) and its rules: a
  declassification needs the actor and reason given, and is authorized against its
  batch (a steward granted in the same batch counts).

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> report = bootstrap(engine, "examples/ai-lineage/validation.yaml")
    >>> report.loaded, report.relationships > 40
    (True, True)
    >>> engine.check("output:o1", "view", "user:frank").permissionship.name
    'HAS_PERMISSION'
    >>> bootstrap(engine, "examples/ai-lineage/validation.yaml").loaded   # a restart: already there
    False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..dsl import DslError
from .api import Engine
from .errors import PreconditionFailedError
from .results import ImportProgress
from .store import RelationshipFilter
from .store.memory import MemoryStore
from .validationfile import ValidationFileError, default_root, load_validation_file, write_relationships

__all__ = ["BOOTSTRAP_ACTOR", "LoadReport", "Seed", "bootstrap", "load_into"]

#: The actor recorded on the revisions a bootstrap writes.
BOOTSTRAP_ACTOR = "bootstrap"


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What loading a file did: whether anything was written, the schema version in force, how many
    relationships the file holds and how many were written, and the revision token after the load."""

    path: str
    loaded: bool
    schema_written: bool
    schema_version: int
    relationships: int
    written: int
    token: str


def _load_one(path: str | Path):  # type: ignore[no-untyped-def]
    documents = load_validation_file(path, root=default_root(path))
    if len(documents) != 1:
        raise ValidationFileError(f"a file to load holds one YAML document, not {len(documents)}", str(path))
    (doc,) = documents
    if doc.schema_text is None:
        raise ValidationFileError("the file has no schema (give `schema` or `schemaFile`)", str(path))
    return doc


def _one_document(path: str | Path) -> tuple[str, list]:  # type: ignore[type-arg]
    doc = _load_one(path)
    return doc.schema_text, doc.relationships


def bootstrap(engine: Engine, path: str | Path) -> LoadReport:
    """Load the validation file at ``path`` into ``engine``'s store if it is empty (see the module docstring)."""
    schema_text, relationships = _one_document(path)
    history = engine.schema_history(include_text=True)
    stored = history[-1] if history else None
    has_data = bool(engine.read_relationships(RelationshipFilter(), limit=1).relationships) if stored else False
    if stored is not None and stored.text != schema_text:
        raise PreconditionFailedError(
            f"the store is not empty (its schema, version {stored.version}, is not the file's); --bootstrap loads "
            "into an empty store only: start on a new database, or leave out --bootstrap")
    if stored is not None and has_data:
        return LoadReport(str(path), False, False, stored.version, len(relationships), 0, engine.revision_token())
    written_schema = stored is None
    version = engine.write_schema(schema_text, actor=BOOTSTRAP_ACTOR).version if written_schema else stored.version
    token = write_relationships(engine, str(path), relationships, actor=BOOTSTRAP_ACTOR,
                                reason=f"bootstrap from {path}") or engine.revision_token()
    return LoadReport(str(path), True, written_schema, version, len(relationships), len(relationships), token)


class Seed:
    """The schema and relationships of one or more validation files, read once and written into each new empty
    store (``headwater serve-testing --load-configs``, like SpiceDB's: every bearer token's store starts with
    them). Several files make one schema (their schemas joined in order) and hold all their relationships.
    The files are tried once when the seed is made, so a schema error or a refused relationship is reported
    then, at its file and line, and never when a store is created.

    Example::

        >>> seed = Seed(["examples/ai-lineage/validation.yaml"])
        >>> engine = Engine(MemoryStore())
        >>> seed.into(engine)
        >>> engine.check("output:o1", "view", "user:frank").permissionship.name
        'HAS_PERMISSION'
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        if not paths:
            raise ValueError("no file to load")
        self.paths = [str(p) for p in paths]
        self._documents = []
        schemas: list[str] = []
        self._starts: list[int] = []  # the line of the joined schema each file's schema starts on
        line = 1
        for path in self.paths:
            doc = _load_one(path)
            self._documents.append(doc)
            text = doc.schema_text.rstrip("\n")
            self._starts.append(line)
            schemas.append(text)
            line += text.count("\n") + 2
        self.schema_text = "\n\n".join(schemas) + "\n"
        self.into(Engine(MemoryStore()))  # refuse a bad file now, not on a token's first call

    def into(self, engine: Engine) -> None:
        """Write the schema and the relationships into ``engine``'s empty store as the trusted ``bootstrap``
        actor (ValidationFileError, at the file and line, for a schema error or a refused relationship)."""
        try:
            engine.write_schema(self.schema_text, actor=BOOTSTRAP_ACTOR)
        except DslError as exc:
            index = max((i for i, start in enumerate(self._starts) if start <= (exc.line or 1)), default=0)
            doc, line = self._documents[index], (exc.line or 1) - self._starts[index] + 1
            raise ValidationFileError(f"schema error at schema line {line}, column {exc.column}: {exc.message}",
                                      doc.path, doc.schema_line + line - 1 if doc.schema_line else 0) from None
        for doc in self._documents:
            write_relationships(engine, doc.path, doc.relationships, actor=BOOTSTRAP_ACTOR,
                                reason=f"loaded from {doc.path}")


def load_into(engine: Engine, path: str | Path, *, existing: str = "error", actor: str | None = None,
              reason: str | None = None, batch_size: int = 1000,
              progress: Callable[[ImportProgress], None] | None = None) -> LoadReport:
    """Write the file's schema (unless the same text is stored) and import its relationships (see the module
    docstring); ``existing`` as :meth:`~.api.Engine.import_relationships` takes it."""
    schema_text, relationships = _one_document(path)
    history = engine.schema_history(include_text=True)
    stored = history[-1] if history else None
    written_schema = stored is None or stored.text != schema_text
    version = (engine.write_schema(schema_text, actor=actor).version if written_schema
               else stored.version)  # type: ignore[union-attr]
    result = engine.import_relationships((rel for rel, _ in relationships), batch_size=batch_size,
                                         progress=progress, actor=actor, reason=reason, existing=existing)
    return LoadReport(str(path), written_schema or result.count > 0, written_schema, version, len(relationships),
                      result.count, result.token)
