"""The embedded catalog: one SQLite file in the data folder, locked with a file lock there."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index import schema
from index.catalog import Catalog


class SqliteCatalog(Catalog):
    """The catalog in a SQLite file; writers on one machine share it through its folder."""

    def __init__(self, path: Path, *, write_lock: schema.WriteLock | None = None) -> None:
        """Open (creating or migrating it, under `write_lock` if given) the catalog at `path`."""
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = path.parent / "write.lock"
        # A migration waits for, and holds off, every write to the folder.
        self.id, self.analyser_version = schema.open_catalog(self._connect(), path,
                                                             write_lock or self.write_lock)

    @property
    def location(self) -> str:
        """The catalog file."""
        return str(self.path)

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """An OS file lock beside the catalog: released by the kernel when its holder dies."""
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = schema.connect(self.path)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                schema.check_unchanged(db, self.path, self.analyser_version)
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
