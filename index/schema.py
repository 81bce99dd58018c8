"""The catalog's schema, numbered by SQLite's `PRAGMA user_version`, and its migrations.

`MIGRATIONS[n - 1]` takes a catalog from version n - 1 to n. Version 0 is either a new, empty
file or one written before the catalog had a version (its tables are version 1, which the first
migration, all `IF NOT EXISTS`, leaves alone). Opening runs what is missing in one transaction,
so a catalog is never left half-migrated, and refuses a catalog newer than this code.

The catalog also records the version of the text analyser its chunk tokens were made with; when
the code's analyser differs, opening recomputes every chunk's tokens from the stored text.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from core import text as analyser
from core.errors import ConfigurationError

log = logging.getLogger(__name__)

WriteLock = Callable[[], AbstractContextManager[object]]


class Rows(Protocol):
    """What a query returns: rows to fetch or iterate over."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Session(Protocol):
    """A connection to a catalog (SQLite's, or PostgreSQL's behind an adapter), queried with
    `?` for parameters."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Rows: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...
    def close(self) -> None: ...

Migration = str | Callable[[sqlite3.Connection], None]

# Version 1: the schema of every catalog written before versioning, kept exactly as it was.
_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
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
-- Every question asks which documents are dated after its as_of (and which are undated):
-- without this index that scan reads every document's text.
CREATE INDEX IF NOT EXISTS documents_by_date ON documents (collection, date_num);
CREATE TABLE IF NOT EXISTS chunks (
    collection TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    tokens TEXT NOT NULL,
    PRIMARY KEY (collection, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (collection, doc_id);
CREATE TABLE IF NOT EXISTS sentences (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (collection, doc_id, start)
);
"""

# Version 2: the log of which documents each version changed, so a lexical index catches up by
# reading only those. Existing collections' logs start at their current version.
_V2 = """
CREATE TABLE changes (
    collection TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (collection, version, doc_id)
);
ALTER TABLE collections ADD COLUMN changes_from INTEGER;
UPDATE collections SET changes_from = version;
"""

# Append only: a released migration is never edited, or catalogs already past it would differ.
MIGRATIONS: list[Migration] = [_V1, _V2]

# The analyser of the tokens in a catalog that does not record one: the one before versioning.
_UNRECORDED_ANALYSER = 1


def latest() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the catalog file, in autocommit mode (transactions are explicit)."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


def open_catalog(db: sqlite3.Connection, path: Path, write_lock: WriteLock | None = None
                 ) -> tuple[str, int]:
    """Bring the catalog to the latest schema and the code's analyser; return its id and that
    analyser version.

    Does nothing (and takes no lock) when it is current already.
    """
    current = analyser.ANALYSER_VERSION
    if _current(db, path, current):
        return _catalog_id(db), current
    with (write_lock or nullcontext)(), _immediate(db):
        # Read again under the locks: another process may have migrated meanwhile.
        found = _user_version(db)
        _refuse_newer(found, path)
        created = found == 0 and not _check_layout(db, path)
        for number in range(found, latest()):
            _apply(db, MIGRATIONS[number])
        db.execute(f"PRAGMA user_version = {latest()}")
        if found != latest() and not created:
            log.info("migrated the catalog %s from version %d to %d", path, found, latest())
        _retokenise_if_stale(db, path, current)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_id', ?)",
                   (uuid.uuid4().hex,))
    return _catalog_id(db), current


def check_unchanged(db: sqlite3.Connection, path: Path, analyser_version: int) -> None:
    """Refuse to write if another citeqa version has migrated or re-tokenised the catalog since
    this process opened it: its rows or tokens would not match what is there now."""
    version, stored = _user_version(db), _stored_analyser(db)
    if version != latest() or stored != analyser_version:
        raise ConfigurationError(
            f"another citeqa version changed the catalog {path} while this process ran "
            f"(schema version {version}, analyser {stored}; this process writes schema "
            f"{latest()}, analyser {analyser_version}); run one citeqa version per data "
            "folder and restart this process",
            code="catalog_changed")


def _current(db: sqlite3.Connection, path: Path, analyser_version: int) -> bool:
    found = _user_version(db)
    _refuse_newer(found, path)
    return (found == latest() and _stored_analyser(db) == analyser_version
            and db.execute("SELECT 1 FROM meta WHERE key = 'catalog_id'").fetchone() is not None)


def _refuse_newer(found: int, path: Path) -> None:
    if found > latest():
        raise ConfigurationError(
            f"the catalog {path} has schema version {found}, written by a newer citeqa; this "
            f"citeqa reads versions up to {latest()}. Upgrade citeqa (pip install -U citeqa), "
            "or point CITEQA_DATA_DIR at another folder; the folder was left unchanged",
            code="catalog_too_new")


def _user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _stored_analyser(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'analyser_version'").fetchone()
    return int(row[0]) if row else _UNRECORDED_ANALYSER


def _catalog_id(db: sqlite3.Connection) -> str:
    return str(db.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()[0])


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _apply(db: sqlite3.Connection, migration: Migration) -> None:
    if callable(migration):
        migration(db)
        return
    # Statement by statement: executescript would commit the transaction first.
    statement = ""
    for line in migration.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip() and not statement.lstrip().startswith("--"):
        raise ValueError(f"incomplete SQL at the end of a migration: {statement!r}")


def _check_layout(db: sqlite3.Connection, path: Path) -> bool:
    """Whether a version 0 file has any of version 1's tables; those it has must have version
    1's columns (another program's SQLite file, say, must not be taken for a catalog)."""
    expected = sqlite3.connect(":memory:")
    found = False
    try:
        _apply(expected, _V1)
        for (table,) in expected.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            want = [row[1] for row in expected.execute(f"PRAGMA table_info({table})")]
            have = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            if have and have != want:
                raise ConfigurationError(
                    f"{path} is not a citeqa catalog this version can read: table {table} has "
                    f"columns {have}, expected {want}; move the file aside and ingest again",
                    code="catalog_unreadable")
            found = found or bool(have)
    finally:
        expected.close()
    return found


def _retokenise_if_stale(db: sqlite3.Connection, path: Path, current: int) -> None:
    """Recompute every chunk's tokens from the stored text if the analyser has changed, and bump
    every collection's version, so each lexical index is rebuilt from the new tokens."""
    stored = _stored_analyser(db)
    if stored != current:
        documents = db.cursor().execute(
            "SELECT collection, doc_id, title, text FROM documents ORDER BY collection, doc_id")
        updated = 0
        for collection, doc_id, title, text in documents:
            chunks = db.execute(
                'SELECT chunk_id, start, "end" FROM chunks WHERE collection = ? AND doc_id = ?',
                (collection, doc_id)).fetchall()
            db.executemany(
                "UPDATE chunks SET tokens = ? WHERE collection = ? AND chunk_id = ?",
                [(" ".join(analyser.chunk_tokens(title, text[start:end])), collection,
                  chunk_id) for chunk_id, start, end in chunks])
            updated += len(chunks)
        db.execute("UPDATE collections SET version = version + 1")
        # Tokens changed without a logged change: no index may catch up across this version.
        db.execute("UPDATE collections SET changes_from = version")
        if updated:
            log.info("re-tokenised %d chunks of %s for analyser version %d (was %d)",
                     updated, path, current, stored)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('analyser_version', ?)",
               (str(current),))
