"""The catalog on a PostgreSQL server (CITEQA_CATALOG_URL), shared by hosts with no shared folder.

Same tables and queries as the SQLite catalog (`index.catalog`), with three differences:

- The write lock is a session-level advisory lock, held on a connection of its own for the
  length of a write: PostgreSQL releases it when the holder's connection ends, so a process
  killed with kill -9 leaves no lock behind, and no host needs a shared folder or `flock`.
- Collection versions come from one sequence, so a number is never reused, not even by a
  collection deleted and created again: a host's cached lexical index, stamped with a version,
  can never be taken for the new collection's.
- The schema is numbered in a `schema_version` table; `MIGRATIONS[n - 1]` (plain SQL) takes it
  from version n - 1 to n, in one transaction under the write lock.

Queries borrow a connection from a small pool per process, so a server's many threads (and many
workers on many hosts) stay well within PostgreSQL's connection limit.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from core import text as analyser
from core.errors import ConfigurationError
from index.catalog import Catalog
from index.schema import Rows

log = logging.getLogger(__name__)

# Advisory lock keys (any two fixed 64-bit numbers; they are per database): the write lock held
# for a whole write, and the one a catalog transaction takes so writers commit one at a time.
WRITE_LOCK_KEY = 0x63697465_71610001
TRANSACTION_LOCK_KEY = 0x63697465_71610002
# Connections one process keeps to the catalog. Each query holds one for a few milliseconds,
# so 8 serve a worker's threads; 4 workers on each of 3 hosts stay under PostgreSQL's default
# max_connections (100), with the write locks' connections besides.
POOL_SIZE = 8

_V1 = """
CREATE SEQUENCE collection_versions;
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE collections (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    version BIGINT NOT NULL DEFAULT nextval('collection_versions'),
    created_at TEXT NOT NULL
);
CREATE TABLE documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    date TEXT,
    date_num INTEGER,
    source TEXT,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_count INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE INDEX documents_by_date ON documents (collection, date_num);
CREATE TABLE chunks (
    collection TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    tokens TEXT NOT NULL,
    PRIMARY KEY (collection, chunk_id)
);
CREATE INDEX chunks_by_document ON chunks (collection, doc_id);
CREATE TABLE sentences (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (collection, doc_id, start)
);
"""

# Version 2: the log of which documents each version changed, as in index.schema.
_V2 = """
CREATE TABLE changes (
    collection TEXT NOT NULL,
    version BIGINT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (collection, version, doc_id)
);
ALTER TABLE collections ADD COLUMN changes_from BIGINT;
UPDATE collections SET changes_from = version
"""

# Append only: a released migration is never edited, or databases already past it would differ.
MIGRATIONS: list[str] = [_V1, _V2]


def latest() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    # The shared queries mark parameters with `?`; psycopg wants `%s`. None has a literal `?`
    # or `%` in it.
    return sql.replace("?", "%s")


class _Fetched(list[Any]):
    """Rows fetched whole, so the connection they came from can go back to the pool."""

    def fetchone(self) -> Any:
        return self[0] if self else None

    def fetchall(self) -> list[Any]:
        return list(self)


class _Pooled:
    """Each query on a connection borrowed from the pool for just that query."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        self.pool = pool

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        with self.pool.connection() as connection:
            cursor = connection.execute(_placeholders(sql), parameters)
            return _Fetched(cursor.fetchall() if cursor.description is not None else [])

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        with self.pool.connection() as connection, connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def close(self) -> None:
        self.pool.close()


class _Session:
    """A psycopg connection that takes the shared queries as they are written."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows:
        return self.connection.execute(_placeholders(sql), parameters)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)

    def close(self) -> None:
        self.connection.close()


class PostgresCatalog(Catalog):
    """The catalog in a PostgreSQL database; every host and process connects to it."""

    _CREATE_COLLECTION = ("INSERT INTO collections (name, model, dimension, created_at) "
                          "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING")
    _BUMP_VERSION = ("UPDATE collections SET version = nextval('collection_versions') "
                     "WHERE name = ?")

    def __init__(self, url: str) -> None:
        """Connect to the database at `url`, creating or migrating the catalog's tables."""
        super().__init__()
        self.url = url
        parts = conninfo_to_dict(url)
        self._where = (f"PostgreSQL database {parts.get('dbname', '?')} on "
                       f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}")
        self.id, self.analyser_version = self._open()
        # A connection the server dropped (a restart) fails the query that finds it, and the
        # pool replaces it.
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, kwargs={"autocommit": True, "connect_timeout": 10}, min_size=1,
            max_size=POOL_SIZE, open=True, name="citeqa-catalog")
        self._queries = _Pooled(self._pool)

    @property
    def location(self) -> str:
        """The database and server, without user or password."""
        return self._where

    def _new_connection(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise ConfigurationError(
                f"cannot use the catalog in the {self._where} ({_first_line(exc)}); start the "
                "server, check CITEQA_CATALOG_URL, or unset it for the embedded catalog",
                code="catalog_unavailable") from exc

    def _connect(self) -> _Pooled:
        return self._queries

    def close(self) -> None:
        """Close the pool's connections, as a process's exit does."""
        self._pool.close()

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """A session-level advisory lock on a connection of its own, released with it."""
        with self._new_connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK_KEY,))
            try:
                yield
            finally:
                if not connection.broken:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK_KEY,))

    @contextmanager
    def _transaction(self) -> Iterator[_Session]:
        with self._write_lock, self._pool.connection() as connection, \
                connection.transaction():
            db = _Session(connection)
            # Writers commit one at a time, as SQLite's BEGIN IMMEDIATE makes them.
            db.execute("SELECT pg_advisory_xact_lock(?)", (TRANSACTION_LOCK_KEY,))
            self._check_unchanged(db)
            yield db

    # The schema ----------------------------------------------------------------------------

    def _open(self) -> tuple[str, int]:
        """Bring the database to the latest schema and the code's analyser; its catalog id."""
        current = analyser.ANALYSER_VERSION
        with self._new_connection() as connection:
            return self._migrate(_Session(connection), current)

    def _migrate(self, db: _Session, current: int) -> tuple[str, int]:
        if self._is_current(db, current):
            return self._catalog_id(db), current
        with self.write_lock(), db.connection.transaction():
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = self._schema_version(db)
            self._refuse_newer(found)
            for number in range(found, latest()):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (latest(),))
            if found and found != latest():
                log.info("migrated the catalog in the %s from version %d to %d", self._where,
                         found, latest())
            self._retokenise_if_stale(db, current)
            db.execute("INSERT INTO meta (key, value) VALUES ('catalog_id', ?) "
                       "ON CONFLICT (key) DO NOTHING", (uuid.uuid4().hex,))
        return self._catalog_id(db), current

    def _is_current(self, db: _Session, analyser_version: int) -> bool:
        if db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return False
        found = self._schema_version(db)
        self._refuse_newer(found)
        return (found == latest() and self._stored_analyser(db) == analyser_version
                and db.execute("SELECT 1 FROM meta WHERE key = 'catalog_id'").fetchone()
                is not None)

    def _check_unchanged(self, db: _Session) -> None:
        """Refuse to write if another citeqa version migrated or re-tokenised the catalog
        since this process opened it."""
        version, stored = self._schema_version(db), self._stored_analyser(db)
        if version != latest() or stored != self.analyser_version:
            raise ConfigurationError(
                f"another citeqa version changed the catalog in the {self._where} while this "
                f"process ran (schema version {version}, analyser {stored}; this process "
                f"writes schema {latest()}, analyser {self.analyser_version}); run one citeqa "
                "version per catalog and restart this process", code="catalog_changed")

    def _refuse_newer(self, found: int) -> None:
        if found > latest():
            raise ConfigurationError(
                f"the catalog in the {self._where} has schema version {found}, written by a "
                f"newer citeqa; this citeqa reads versions up to {latest()}. Upgrade citeqa "
                "(pip install -U citeqa), or point CITEQA_CATALOG_URL at another database; "
                "the database was left unchanged", code="catalog_too_new")

    @staticmethod
    def _schema_version(db: _Session) -> int:
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @staticmethod
    def _stored_analyser(db: _Session) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'analyser_version'").fetchone()
        # Every PostgreSQL catalog records its analyser from the start; none is "before".
        return int(row[0]) if row else -1

    @staticmethod
    def _catalog_id(db: _Session) -> str:
        return str(db.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()[0])

    def _retokenise_if_stale(self, db: _Session, current: int) -> None:
        """Recompute every chunk's tokens if the analyser has changed (and bump every
        collection's version, so each host rebuilds its lexical index)."""
        stored = self._stored_analyser(db)
        if stored == current:
            return
        updated = 0
        keys = db.execute("SELECT collection, doc_id FROM documents").fetchall()
        for collection, doc_id in keys:
            title, text = db.execute(
                "SELECT title, text FROM documents WHERE collection = ? AND doc_id = ?",
                (collection, doc_id)).fetchone()
            chunks = db.execute(
                'SELECT chunk_id, start, "end" FROM chunks WHERE collection = ? AND doc_id = ?',
                (collection, doc_id)).fetchall()
            db.executemany(
                "UPDATE chunks SET tokens = ? WHERE collection = ? AND chunk_id = ?",
                [(" ".join(analyser.chunk_tokens(title, text[start:end])), collection,
                  chunk_id) for chunk_id, start, end in chunks])
            updated += len(chunks)
        db.execute("UPDATE collections SET version = nextval('collection_versions')")
        # Tokens changed without a logged change: no index may catch up across this version.
        db.execute("UPDATE collections SET changes_from = version")
        if updated:
            log.info("re-tokenised %d chunks in the %s for analyser version %d (was %d)",
                     updated, self._where, current, stored)
        db.execute("INSERT INTO meta (key, value) VALUES ('analyser_version', ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(current),))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
