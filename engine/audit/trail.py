"""An audit trail that stays on: the log an engine over a lasting store must keep, and acknowledging a break.

A store that lasts (a SQLite file, a PostgreSQL database; not memory) whose head
revision carries audit metadata (:mod:`.binding`) was last
written audited. :func:`open_store_log` then opens its log whatever the config says,
and refuses (:class:`~headwater.engine.errors.AuditTrailBrokenError`) when the log is
missing, is another log, or does not continue what the store recorded (rolled back,
rewritten, or the record of the store's last change is not in it). A signed log
opened without its key, or with another key, is a
:class:`~headwater.engine.errors.ConfigError`: records would be written unsigned.

Nothing serves or writes such a database until an operator runs
:func:`acknowledge` (``headwater audit acknowledge``): it appends an
``acknowledgement`` record (who, why, the old log's id, the store revision, what was
found) to the log, a new one if the old is gone, and writes a store revision that
names this log, so the chain goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..dburi import is_postgres_uri, redact
from ..errors import (
    AuditTrailBrokenError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from .binding import ACKNOWLEDGED_KEY, AuditBinding
from .log import CONTINUITY_WAIT, AuditLog, audit_location_for, located
from .records import AuditRecord, RecordKind

__all__ = ["acknowledge", "open_store_log"]


def open_store_log(config: Config, database: str | Path | None, binding: AuditBinding | None, *,
                   wait: float = CONTINUITY_WAIT) -> AuditLog | None:
    """The audit log an engine over the store at ``database`` (a SQLite file or a PostgreSQL URI; None: a store
    that does not last) keeps, if any.

    ``binding`` is what the store's head revision recorded (None: written without a log, or never). Without
    one, the log is the config's choice, except that a log in a PostgreSQL database is kept once it exists (as
    ``Engine.open`` keeps a ``<file>.audit`` beside a SQLite file), whatever server writes next; with one, the
    log is kept whatever the config says, and must continue the store (AuditTrailBrokenError otherwise). A
    signed log needs its key (ConfigError).
    """
    settings = config.audit
    if binding is None or database is None:
        if not settings.enabled:
            return _log_in_the_database(config, database)
        log = AuditLog.from_config(config, database)
        return _with_key(log, None) if database is not None else log
    location = _log_location(config, database)
    try:
        log = AuditLog.from_config(config, database, create=False)
    except NotFoundError:
        raise _refusal(database, location,
                       f"{binding.describe()}, but there is no audit log {located(location)}") from None
    except StoreUnavailableError:
        raise
    except StoreError as exc:
        raise _refusal(database, location, f"{binding.describe()}, but its log cannot be read ({exc})") from None
    try:
        try:
            problem = log.continues(binding, wait=wait)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # a table gone, a corrupted page
            problem = f"{binding.describe()}, but its log cannot be read ({exc})"
        if problem is not None:
            raise _refusal(database, location, problem)
        return _with_key(log, binding)
    except BaseException:
        log.close()
        raise


def acknowledge(config: Config, database: str | Path, binding: AuditBinding | None, *, by: str, reason: str,
                time: datetime, write_revision: Callable[[dict[str, str]], int],
                token: Callable[[int], str]) -> AuditRecord | None:
    """Accept a broken audit trail and start the chain again; the acknowledgement record (None: the log
    continues the store, nothing to acknowledge).

    The log at the config's path (or beside the store, or in its database) is kept when it verifies (the record
    is appended to it), created when there is none; a log that cannot be read or does not verify is refused: set
    it aside (it is evidence) first.
    ``write_revision`` commits an empty store revision with the given metadata and returns it.
    """
    if not by or not reason:
        raise InvalidRequestError("an acknowledgement needs who (--by) and why (--reason)")
    if binding is None:
        return None
    try:
        whole = open_store_log(config, database, binding)
    except AuditTrailBrokenError as exc:
        problem = exc.problem
    else:
        if whole is not None:
            whole.close()
        return None
    location = _log_location(config, database)
    key = config.audit.resolved_key()
    try:
        log = AuditLog(location, create=False, key=key)
    except NotFoundError:
        if binding.signed and key is None:  # a signed trail goes on signed
            raise ConfigError(f"{binding.describe()}, a signed log: give its key (HEADWATER_AUDIT_KEY) to start "
                              "the new one") from None
        log = AuditLog(location, key=key)
    except StoreUnavailableError:
        raise
    except StoreError as exc:
        raise AuditTrailBrokenError(f"the audit log {located(location)} cannot be used ({exc}): "
                                    f"{_set_aside(location)}") from None
    else:
        _with_key(log, binding)
        result = log.verify()
        if not result.ok:
            log.close()
            raise AuditTrailBrokenError(f"the audit log {located(location)} does not verify ({result}): "
                                        f"{_set_aside(location)}")
    with log:
        metadata = {"actor": by, "reason": reason, **log.revision_metadata(), ACKNOWLEDGED_KEY: binding.log_id}
        revision = write_revision(metadata)
        log.record_acknowledgement(time=time, actor=by, reason=reason, revision=revision, token=token(revision),
                                   binding=binding, problem=problem)
        return log.query(kind=RecordKind.ACKNOWLEDGEMENT, newest_first=True, limit=1).records[0]


def _log_in_the_database(config: Config, database: str | Path | None) -> AuditLog | None:
    """The log a PostgreSQL database holds (``headwater audit init``, or an audited server), if any."""
    if database is None or config.audit.path or not is_postgres_uri(str(database)):
        return None
    try:
        log = AuditLog.from_config(config, database, create=False)
    except NotFoundError:
        return None
    return _with_key(log, None)


def _log_location(config: Config, database: str | Path) -> str | Path:
    return Path(config.audit.path) if config.audit.path else audit_location_for(database)


def _set_aside(location: str | Path) -> str:
    """How an operator keeps a log that cannot go on as evidence, and makes room for a new one."""
    if isinstance(location, str) and is_postgres_uri(location):
        return ("keep its tables as evidence (pg_dump --table 'audit_*'), empty them (TRUNCATE audit_records, "
                "audit_head, audit_identity) and run the command again to start a new log")
    return "move it aside (keep it as evidence) and run the command again to start a new log"


def _with_key(log: AuditLog, binding: AuditBinding | None) -> AuditLog:
    problem = log.key_problem(binding)
    if problem is not None:
        log.close()
        raise ConfigError(problem)
    return log


def _refusal(database: str | Path, location: str | Path, problem: str) -> AuditTrailBrokenError:
    shown = redact(str(database))
    target = f"--db {shown}" + (f" --audit {location}" if location != audit_location_for(database) else "")
    return AuditTrailBrokenError(
        f"refusing to open {shown}: its audit trail is broken: {problem}. Nothing is served or written until "
        f"an operator who has looked into it acknowledges the break, which starts the chain again: "
        f"headwater audit acknowledge {target} --by NAME --reason TEXT", problem=problem)
