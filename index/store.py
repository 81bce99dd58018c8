"""The store: the catalog (documents, text), the vectors (Chroma) and BM25, kept in step.

Each citeqa collection has its chunk vectors in a Chroma collection (see `index.vectors`); the
catalog (a SQLite file in the data folder, or a PostgreSQL database) holds every document's full
text, so a citation can be shown in its document, and its sentences' vectors, and is the commit
point of every write.

This module opens the catalog and the vector store and keeps the collections of a data folder
(create, open, reload, delete); what is done to one collection, writing, repairing, reading and
searching it, is `index.collection_store.CollectionStore`, re-exported here with `Coverage`.
"""

from __future__ import annotations

import logging
import shutil
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigurationError, NotFound
from core.settings import Settings
from index.catalog import Catalog, CollectionRecord
from index.catalog_sqlite import SqliteCatalog
from index.collection_store import CollectionStore, Coverage
from index.vectors import VectorStore, validate_collection_name

__all__ = [
    "CollectionSize",
    "CollectionStore",
    "Coverage",
    "Store",
    "catalog_path",
    "open_catalog",
    "validate_collection_name",
]

log = logging.getLogger(__name__)


def catalog_path(data_dir: Path) -> Path:
    """Where a data folder keeps its SQLite catalog: there once anything was stored in it."""
    return data_dir / "catalog.sqlite3"


def open_catalog(data_dir: Path, catalog_url: str | None = None) -> Catalog:
    """The catalog at `catalog_url` (PostgreSQL), or else the SQLite file in the data folder."""
    if catalog_url:
        # Imported here: the embedded catalog does not need the PostgreSQL driver loaded.
        from index.catalog_pg import PostgresCatalog

        return PostgresCatalog(catalog_url)
    return SqliteCatalog(catalog_path(data_dir))


@dataclass(frozen=True)
class CollectionSize:
    """How much one collection holds, as the catalog counts it."""

    name: str
    documents: int
    chunks: int


class Store:
    """All collections of one catalog (in the data folder, or on PostgreSQL), with vectors in
    the data folder or on a Chroma server and lexical indexes cached in the data folder."""

    def __init__(self, data_dir: Path, *, vectors: VectorStore | None = None,
                 catalog_url: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._catalog = open_catalog(self.data_dir, catalog_url)
        self._vectors = vectors or VectorStore.embedded(self.data_dir / "chroma")
        self._open: dict[str, CollectionStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store the settings describe: embedded Chroma, or the server at chroma_url; the
        SQLite catalog, or the PostgreSQL one at catalog_url."""
        vectors = VectorStore.server(settings) if settings.chroma_url else None
        return cls(settings.data_dir, vectors=vectors, catalog_url=settings.catalog_url)

    def reachable(self) -> bool:
        """Whether the vector store answers (always, when embedded; a heartbeat, on a server)."""
        return self._vectors.reachable()

    def close(self) -> None:
        """Release the vector store's client and this thread's catalog connection, as a
        process's exit does."""
        self._vectors.close()
        self._catalog.close()

    def write_lock(self) -> AbstractContextManager[object]:
        """Exclusive across every process using the catalog, for every write and repair.

        A file lock in the data folder, or a PostgreSQL advisory lock: either is released when
        its holder dies, even by kill -9.
        """
        return self._catalog.write_lock()

    def collections(self) -> list[CollectionRecord]:
        """Every collection in the data folder."""
        return self._catalog.collections()

    def sizes(self) -> list[CollectionSize]:
        """Documents and chunks of every collection, from the catalog alone (no vectors)."""
        return [CollectionSize(record.name, self._catalog.count_documents(record.name),
                               self._catalog.count_chunks(record.name))
                for record in self._catalog.collections()]

    def collection(self, name: str) -> CollectionStore:
        """An existing collection; `NotFound` if there is none of that name."""
        validate_collection_name(name)
        with self._lock:
            record = self._catalog.collection(name)
            if record is None:
                self._open.pop(name, None)
                raise NotFound(
                    f"collection {name!r} does not exist; ingest documents into it first "
                    f"(citeqa ingest PATH --collection {name})",
                    code="collection_not_found",
                )
            store = self._open.get(name)
            if (store is not None and self._vectors.is_embedded
                    and record.version != store.seen_version):
                # Another process wrote to the folder: embedded Chroma keeps its index in
                # memory and would not search what that process added. Read it anew.
                log.info("collection %s changed in another process; reloading vectors", name)
                self._vectors.reload()
                self._open.clear()
                store = None
            if store is None:
                store = CollectionStore(self, record)
                store.reconcile()
                self._open[name] = store
            return store

    def create_collection(self, name: str, *, model: str, dimension: int) -> CollectionStore:
        """The named collection, created for this embedding model if it does not exist."""
        validate_collection_name(name)
        created = self._catalog.collection(name) is None
        if created:
            self._catalog.create_collection(name, model=model, dimension=dimension)
        try:
            store = self.collection(name)
        except ConfigurationError:
            # The Chroma side refused (another folder's collection): record nothing here.
            if created:
                self._catalog.drop_collection(name)
            raise
        store.check_model(model, dimension)
        return store

    def delete_collection(self, name: str) -> None:
        """Remove a collection: its vectors, documents and lexical index."""
        self.collection(name)
        with self.write_lock():
            self._catalog.drop_collection(name)
            self._vectors.drop(name)
        with self._lock:
            opened = self._open.pop(name, None)
        if opened is not None:  # a merge finishing later would save the old segments again
            opened._lexical.wait_for_merge()
        shutil.rmtree(self._lexical_folder(name), ignore_errors=True)

    def _lexical_folder(self, name: str) -> Path:
        return self.data_dir / "lexical" / name
