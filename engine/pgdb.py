"""One PostgreSQL database the engine keeps: its connection pool, transactions, migrations and error translation.

The PostgreSQL store (``engine/store/postgres.py``) speaks to PostgreSQL through
this module only, as the SQLite ones do through ``engine/sqlitedb.py``; no other
module imports ``psycopg`` (``tests/test_architecture.py``). It holds:

- **Naming a database** (``engine/dburi.py``, which loads no driver):
  the standard ``PG*`` environment variables and the password file fill what the
  URI leaves out, exactly as libpq documents; in messages, logs and errors the
  database is only ever named by its redacted form (``redact``).
- **A pool** (``psycopg_pool.ConnectionPool``, opened lazily): a connection is
  lent for one transaction and given back. A pool with every connection lent
  makes the next caller wait up to ``pool_timeout`` seconds, then fail with
  ``StoreUnavailableError`` ("the pool of N connections is exhausted"), never hang.
  Each connection has a ``statement_timeout``; a statement that runs longer is
  cancelled by the server and reported as ``StoreUnavailableError``.
- **Errors**: :meth:`Database.translate` turns a driver exception into the
  engine's error tree: a lost or refused connection, an exhausted pool, a server
  shutting down or a cancelled statement → ``StoreUnavailableError``
  (the gRPC API answers UNAVAILABLE; the pool replaces broken connections by
  itself, so the server recovers when the database is back); a unique violation,
  a serialization failure or a deadlock → ``WriteConflictError``; anything else
  → ``StoreError``. Each message names the action and the redacted database.
- **Migrations**: :meth:`Database.migrate` applies the numbered migrations a
  database lacks, in one transaction under an advisory lock (two servers
  migrating at once do it once), and :meth:`Database.migration_plan` says what it
  would do; :meth:`Database.require_current` refuses a database that is not
  migrated (naming ``headwater migrate``) or was migrated by a newer Headwater.

Example::

    >>> db = Database("postgresql://ann:s3cret@db.example:5432/headwater", name="the store")
    >>> db.place
    'the store at postgresql://ann:***@db.example:5432/headwater'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import psycopg_pool
from psycopg import errors as pgerrors

from .dburi import URI_RE, redact
from .errors import StoreError, StoreUnavailableError, WriteConflictError
from .sqlitedb import Migration  # the one shape of a numbered migration, whatever the database

__all__ = ["Connection", "Database", "DriverError", "Migration", "RawCursor"]

#: A connection lent by the pool (callers type their arguments with it, without importing psycopg).
Connection = psycopg.Connection
#: A cursor with PostgreSQL's own numbered parameters (``$1``), as the SQL readers write them.
RawCursor = psycopg.RawCursor
#: What the driver raises (callers catch it on their hot paths and :meth:`Database.translate` it).
DriverError = psycopg.Error

_log = logging.getLogger("headwater.store")
_MIGRATION_LOCK = 0x48574D47  # "HWMG": the advisory lock migrations take
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "08000", "08001", "08003", "08004", "08006", "57014"}
_CONFLICT_STATES = {"23505", "40001", "40P01"}


class Database:
    """A PostgreSQL database named by ``uri``, reached through a pool (see the module docstring).

    :param uri: a ``postgresql://`` URI (libpq's rules; ``PG*`` variables fill the rest).
    :param name: what the database is to the engine, in messages ("the PostgreSQL store").
    :param pool_size: the most connections open at once.
    :param pool_timeout: seconds a caller waits for a connection before ``StoreUnavailableError``.
    :param statement_timeout: seconds a statement may run before the server cancels it (0: no limit).
    :param connect_timeout: seconds to wait for a new connection.
    """

    def __init__(self, uri: str, *, name: str, pool_size: int = 20, pool_timeout: float = 5.0,
                 statement_timeout: float = 30.0, connect_timeout: float = 5.0) -> None:
        self.uri = uri
        self.name = name
        self.place = f"{name} at {redact(uri)}"
        self.pool_size = pool_size
        options = f"-c statement_timeout={int(statement_timeout * 1000)}"
        self._connect_timeout = max(1, round(connect_timeout))
        self._pool = psycopg_pool.ConnectionPool(
            uri, min_size=1, max_size=pool_size, timeout=pool_timeout, open=False, name=name,
            kwargs={"autocommit": True, "connect_timeout": self._connect_timeout, "options": options,
                    "application_name": "headwater"},
            reconnect_timeout=0,
        )
        self._opened = False

    def pool_stats(self) -> dict[str, int]:
        """Connections ``in_use`` and ``idle`` and requests ``waiting`` for one (for the metrics)."""
        stats = self._pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        return {"in_use": size - idle, "idle": idle, "waiting": stats.get("requests_waiting", 0)}

    # --- connections ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the pool, once one connection is known to work (StoreUnavailableError naming the database and the
        driver's reason if it cannot be reached: one attempt, without the pool's retries and warnings)."""
        if self._opened:
            return
        try:
            psycopg.connect(self.uri, connect_timeout=self._connect_timeout).close()
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"cannot open {self.place}: {_redacted_message(exc, self.uri)}") from None
        try:
            self._pool.open(wait=True, timeout=self._pool.timeout)
        except psycopg_pool.PoolTimeout:
            self._pool.close(timeout=0)
            raise StoreUnavailableError(f"cannot open {self.place}: no connection within "
                                        f"{self._pool.timeout:g} s") from None
        self._opened = True

    def checkout(self) -> Connection:
        """A connection lent by the pool (give it back with :meth:`checkin`)."""
        try:
            return self._pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailableError(
                f"{self.place} is unavailable: the pool of {self.pool_size} connections is exhausted (every "
                f"connection stayed busy for {self._pool.timeout:g} s); raise the pool size or lower the load"
            ) from exc
        except psycopg_pool.PoolClosed as exc:
            raise StoreError(f"{self.place} is closed") from exc

    def checkin(self, conn: Connection) -> None:
        """Give ``conn`` back (a broken connection is discarded and replaced by the pool)."""
        if conn.broken:
            self._pool.check()  # the others may be broken too (the server restarted): replace them all now
        self._pool.putconn(conn)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self.checkout()
        try:
            yield conn
        finally:
            self.checkin(conn)

    @contextmanager
    def transaction(self, action: str, begin: str = "BEGIN") -> Iterator[Connection]:
        """A connection inside one transaction (``begin``), committed after the block, rolled back on any
        exception; driver errors become engine errors naming ``action``."""
        with self.connection() as conn:
            try:
                conn.execute(begin)
                try:
                    yield conn
                except BaseException:
                    if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except DriverError as exc:
                raise self.translate(exc, action) from exc

    def close(self) -> None:
        self._pool.close(timeout=5)

    # --- errors -----------------------------------------------------------------------------

    def translate(self, exc: BaseException, action: str) -> StoreError:
        """The engine error for the driver exception ``exc`` raised while doing ``action``."""
        if isinstance(exc, StoreError):
            return exc
        state = getattr(exc, "sqlstate", None)
        detail = _redacted_message(exc, self.uri)
        error: StoreError
        if isinstance(exc, pgerrors.QueryCanceled):
            error = StoreUnavailableError(f"cannot {action}: {self.place} cancelled the statement ({detail})")
        elif state in _CONFLICT_STATES:
            error = WriteConflictError(f"cannot {action}: {self.place} refused a conflicting write ({detail}); "
                                       "try again")
        elif state in _UNAVAILABLE_STATES or isinstance(exc, psycopg.OperationalError) \
                or isinstance(exc, psycopg_pool.PoolTimeout):
            error = StoreUnavailableError(f"cannot {action}: {self.place} is unavailable ({detail})")
        else:
            error = StoreError(f"cannot {action}: {self.place} failed ({type(exc).__name__}: {detail})")
        error.__cause__ = exc
        return error

    @contextmanager
    def translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except DriverError as exc:
            raise self.translate(exc, action) from exc

    # --- migrations -------------------------------------------------------------------------

    def applied_version(self, conn: Connection, table: str) -> int | None:
        """The highest migration recorded (0: none yet), or None when the database has no migrations table."""
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
        if not found or not found[0]:
            return None
        row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def migration_plan(self, migrations: Sequence[Migration], *, table: str) -> list[Migration]:
        """The migrations :meth:`migrate` would apply now (empty: up to date); StoreError for a newer database."""
        with self.connection() as conn, self.translated("read the migrations"):
            applied = self.applied_version(conn, table) or 0
        self._refuse_newer(applied, migrations[-1].version)
        return [m for m in migrations if m.version > applied]

    def migrate(self, migrations: Sequence[Migration], *, table: str) -> list[Migration]:
        """Apply the migrations the database lacks, in one transaction under an advisory lock; what was applied
        (empty: it was up to date). Running it again changes nothing."""
        with self.transaction("migrate") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                         "applied_at TIMESTAMPTZ NOT NULL)")
            applied = self.applied_version(conn, table) or 0
            self._refuse_newer(applied, migrations[-1].version)
            done = []
            for migration in migrations:
                if migration.version > applied:
                    for statement in migration.statements:
                        conn.execute(statement)  # type: ignore[arg-type]  # our own SQL, not user input
                    conn.execute(f"INSERT INTO {table} (version, name, applied_at) VALUES (%s, %s, %s)",
                                 [migration.version, migration.name, datetime.now(UTC)])
                    done.append(migration)
                    _log.info("migrated %s to version %d (%s)", self.place, migration.version, migration.name)
            return done

    def require_current(self, migrations: Sequence[Migration], *, table: str) -> None:
        """Refuse (StoreError) a database that lacks migrations or was migrated by a newer Headwater."""
        latest = migrations[-1].version
        with self.connection() as conn, self.translated("open the store"):
            applied = self.applied_version(conn, table)
        self._refuse_newer(applied or 0, latest)
        if applied is None or applied < latest:
            state = "is not migrated" if not applied else f"is at table layout version {applied} of {latest}"
            raise StoreError(f"cannot open {self.place}: it {state}; run `headwater migrate --db "
                             f"{redact(self.uri)}` first")

    def _refuse_newer(self, applied: int, latest: int) -> None:
        if applied > latest:
            raise StoreError(f"cannot open {self.place}: it was migrated by a newer Headwater (table layout "
                             f"version {applied}; this version knows up to {latest}); upgrade Headwater")


def _redacted_message(exc: BaseException, uri: str) -> str:
    """The driver's message, first line, without a password of ``uri`` should the driver have echoed it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    secrets = re.findall(r"(?i)password=([^&]*)", uri)
    match = URI_RE.match(uri)
    if match and match.group(2) and ":" in match.group(2):
        secrets.append(match.group(2)[:-1].split(":", 1)[1])
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
