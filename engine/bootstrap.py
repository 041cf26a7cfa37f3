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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .api import Engine
from .errors import PreconditionFailedError
from .results import ImportProgress
from .store import Operation, RelationshipFilter, Update
from .validationfile import ValidationFileError, default_root, load_validation_file

__all__ = ["BOOTSTRAP_ACTOR", "LoadReport", "bootstrap", "load_into"]

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


def _one_document(path: str | Path) -> tuple[str, list]:  # type: ignore[type-arg]
    documents = load_validation_file(path, root=default_root(path))
    if len(documents) != 1:
        raise ValidationFileError(f"a file to load holds one YAML document, not {len(documents)}", str(path))
    (doc,) = documents
    if doc.schema_text is None:
        raise ValidationFileError("the file has no schema (give `schema` or `schemaFile`)", str(path))
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
    reason = f"bootstrap from {path}"
    limit = engine.config.limits.max_updates_per_write
    token = engine.revision_token()
    for start in range(0, len(relationships), limit):
        batch = [Update(Operation.TOUCH, rel) for rel, _ in relationships[start:start + limit]]
        token = engine.write(batch, actor=BOOTSTRAP_ACTOR, reason=reason, trusted=True).token
    return LoadReport(str(path), True, written_schema, version, len(relationships), len(relationships), token)


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
