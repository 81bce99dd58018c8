"""The catalog: every document (with its full text), chunk and sentence vector, and the
version of each collection.

The catalog is the commit point of ingestion. Chunks are written to Chroma first, then the
catalog commits in one transaction; anything in Chroma that the catalog does not list is an
orphan of an interrupted run and is removed on the next open. So a document is either fully
there or not at all, whatever moment an ingestion is killed at.

`Catalog` holds the queries, written once in SQL both databases accept (with `?` for
parameters); its two kinds differ only in how they connect, lock and migrate:
`index.catalog_sqlite.SqliteCatalog`, a file in the data folder (the default), and
`index.catalog_pg.PostgresCatalog`, a PostgreSQL database several hosts share.

This module holds collections, document writes and listings and the counts; the reads a
question makes (chunk records, filters, the lexical index's rows) are in `index.catalog_reads`,
the base `Catalog` inherits them from.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np

from core.documents import (
    DocumentInfo,
    DocumentPage,
    PreparedDocument,
    StoredDocument,
    date_number,
)
from index.catalog_reads import CatalogReads
from index.catalog_rows import CollectionRecord, LexicalRow, now, stored_document
from index.schema import Session

__all__ = ["Catalog", "CollectionRecord", "LexicalRow"]


class Catalog(CatalogReads):
    """Documents, chunks and collection versions, in SQLite or PostgreSQL."""

    # How a new collection is recorded unless it exists, and how its version moves on: the two
    # statements whose SQL differs between the databases.
    _CREATE_COLLECTION = ("INSERT OR IGNORE INTO collections (name, model, dimension, "
                          "created_at) VALUES (?, ?, ?, ?)")
    _BUMP_VERSION = "UPDATE collections SET version = version + 1 WHERE name = ?"

    # Set by each kind when it opens. id: marks the Chroma collections this catalog owns, so
    # two catalogs never share one. analyser_version: made the stored tokens; stamped on the
    # lexical index of them.
    id: str
    analyser_version: int

    def __init__(self) -> None:
        self._local = threading.local()
        self._write_lock = threading.Lock()

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the catalog is, for messages (never with a password)."""

    @abstractmethod
    def write_lock(self) -> AbstractContextManager[object]:
        """Exclusive across every process using this catalog, for every write and repair;
        released if its holder dies, even by kill -9."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Session]:
        """One write transaction, serialised with every other writer's."""

    def close(self) -> None:
        """Close this thread's connection (the next use opens another)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()

    # Collections -------------------------------------------------------------------------

    def collection(self, name: str) -> CollectionRecord | None:
        """The record of a collection, or None if it does not exist."""
        row = self._connect().execute(
            "SELECT name, model, dimension, version, created_at FROM collections WHERE name = ?",
            (name,),
        ).fetchone()
        return CollectionRecord(*row) if row else None

    def collections(self) -> list[CollectionRecord]:
        """All collections, by name."""
        rows = self._connect().execute(
            "SELECT name, model, dimension, version, created_at FROM collections ORDER BY name"
        ).fetchall()
        return [CollectionRecord(*row) for row in rows]

    def create_collection(self, name: str, *, model: str, dimension: int) -> CollectionRecord:
        """Record a new collection (no-op if it exists)."""
        with self._transaction() as db:
            db.execute(self._CREATE_COLLECTION, (name, model, dimension, now()))
            # The log starts with the collection: no cache of an earlier one catches up from it.
            db.execute("UPDATE collections SET changes_from = version "
                       "WHERE name = ? AND changes_from IS NULL", (name,))
        record = self.collection(name)
        assert record is not None
        return record

    def drop_collection(self, name: str) -> None:
        """Forget a collection and everything in it."""
        with self._transaction() as db:
            db.execute("DELETE FROM chunks WHERE collection = ?", (name,))
            db.execute("DELETE FROM documents WHERE collection = ?", (name,))
            db.execute("DELETE FROM sentences WHERE collection = ?", (name,))
            db.execute("DELETE FROM changes WHERE collection = ?", (name,))
            db.execute("DELETE FROM collections WHERE name = ?", (name,))

    def version(self, name: str) -> int:
        """A number that grows with every write to the collection."""
        row = self._connect().execute(
            "SELECT version FROM collections WHERE name = ?", (name,)
        ).fetchone()
        return int(row[0]) if row else -1

    # Documents ---------------------------------------------------------------------------

    def content_hashes(self, collection: str, doc_ids: Sequence[str] | None = None
                       ) -> dict[str, str]:
        """Document id -> content hash, for every document of the collection or, given
        `doc_ids`, for those of them it holds."""
        if doc_ids is None:
            rows = self._connect().execute(
                "SELECT doc_id, content_hash FROM documents WHERE collection = ?", (collection,))
            return dict(rows.fetchall())
        wanted = sorted(set(doc_ids))
        found: dict[str, str] = {}
        # In slices, so a prune or a large batch stays under SQLite's parameter limit.
        for offset in range(0, len(wanted), 500):
            window = wanted[offset:offset + 500]
            found.update(self._connect().execute(
                f"SELECT doc_id, content_hash FROM documents WHERE collection = ? "
                f"AND doc_id IN ({','.join('?' * len(window))})", (collection, *window)))
        return found

    def write_documents(
        self,
        collection: str,
        items: Sequence[tuple[PreparedDocument, Sequence[str]]],
    ) -> list[str]:
        """Replace each document, its chunks and sentences in one transaction.

        Returns the ids of the chunks that were replaced, to delete from Chroma.
        """
        replaced: list[str] = []
        written_at = now()
        with self._transaction() as db:
            for prepared, chunk_ids in items:
                document, chunks, tokens = (
                    prepared.document, prepared.chunks, prepared.chunk_tokens)
                replaced.extend(
                    row[0]
                    for row in db.execute(
                        "SELECT chunk_id FROM chunks WHERE collection = ? AND doc_id = ?",
                        (collection, document.id),
                    )
                )
                db.execute(
                    "DELETE FROM chunks WHERE collection = ? AND doc_id = ?",
                    (collection, document.id),
                )
                db.execute(
                    "DELETE FROM documents WHERE collection = ? AND doc_id = ?",
                    (collection, document.id),
                )
                db.execute(
                    "INSERT INTO documents (collection, doc_id, title, url, date, "
                    "date_num, source, metadata, text, content_hash, chunk_count, ingested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        collection, document.id, document.title, document.url, document.date,
                        date_number(document.date), document.source,
                        json.dumps(document.metadata, ensure_ascii=False, default=str),
                        document.text, document.content_hash, len(chunks), written_at,
                    ),
                )
                db.executemany(
                    'INSERT INTO chunks (collection, chunk_id, doc_id, idx, start, "end", tokens) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (collection, chunk_id, document.id, chunk.index, chunk.start, chunk.end,
                         " ".join(chunk_tokens))
                        for chunk, chunk_id, chunk_tokens in zip(
                            chunks, chunk_ids, tokens, strict=True)
                    ],
                )
                db.execute("DELETE FROM sentences WHERE collection = ? AND doc_id = ?",
                           (collection, document.id))
                vectors = np.asarray(prepared.sentence_vectors, dtype=np.float16)
                db.executemany(
                    'INSERT INTO sentences (collection, doc_id, start, "end", vector) '
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (collection, document.id, start, end, vector.tobytes())
                        for (start, end), vector in zip(prepared.sentences, vectors, strict=True)
                    ],
                )
            self._bump(db, collection, [prepared.document.id for prepared, _ in items])
        new_ids = {cid for _, chunk_ids in items for cid in chunk_ids}
        return [cid for cid in replaced if cid not in new_ids]

    def delete_documents(self, collection: str, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents; return the ids of their chunks (to delete from Chroma)."""
        removed: list[str] = []
        with self._transaction() as db:
            for doc_id in doc_ids:
                removed.extend(
                    row[0]
                    for row in db.execute(
                        "SELECT chunk_id FROM chunks WHERE collection = ? AND doc_id = ?",
                        (collection, doc_id),
                    )
                )
                db.execute(
                    "DELETE FROM chunks WHERE collection = ? AND doc_id = ?", (collection, doc_id)
                )
                db.execute(
                    "DELETE FROM documents WHERE collection = ? AND doc_id = ?",
                    (collection, doc_id),
                )
                db.execute("DELETE FROM sentences WHERE collection = ? AND doc_id = ?",
                           (collection, doc_id))
            self._bump(db, collection, doc_ids)
        return removed

    def document(self, collection: str, doc_id: str) -> StoredDocument | None:
        """One document with its text, or None."""
        row = self._connect().execute(
            "SELECT doc_id, title, url, date, source, metadata, text, content_hash, chunk_count, "
            "ingested_at FROM documents WHERE collection = ? AND doc_id = ?",
            (collection, doc_id),
        ).fetchone()
        return stored_document(row) if row else None

    def documents(self, collection: str) -> list[StoredDocument]:
        """Every document of the collection, by id."""
        rows = self._connect().execute(
            "SELECT doc_id, title, url, date, source, metadata, text, content_hash, chunk_count, "
            "ingested_at FROM documents WHERE collection = ? ORDER BY doc_id",
            (collection,),
        ).fetchall()
        return [stored_document(row) for row in rows]

    def document_page(self, collection: str, *, limit: int, cursor: str | None = None
                      ) -> DocumentPage:
        """Up to `limit` documents after the id `cursor`, by id, without their text."""
        after = "" if cursor is None else cursor
        # The text never leaves the database: its length is all a listing shows of it. One row
        # more than asked tells whether another page follows.
        rows = self._connect().execute(
            "SELECT doc_id, title, url, date, source, metadata, chunk_count, ingested_at, "
            "LENGTH(text) FROM documents WHERE collection = ? AND doc_id > ? "
            "ORDER BY doc_id LIMIT ?",
            (collection, after, limit + 1),
        ).fetchall()
        documents = [
            DocumentInfo(id=doc_id, title=title, url=url, date=date, source=source,
                         metadata=json.loads(metadata), chunks=int(chunks),
                         ingested_at=ingested_at, size=int(size))
            for doc_id, title, url, date, source, metadata, chunks, ingested_at, size
            in rows[:limit]
        ]
        next_cursor = documents[-1].id if len(rows) > limit else None
        return DocumentPage(documents, next_cursor, self.count_documents(collection))

    def existing_doc_ids(self, collection: str, doc_ids: Sequence[str]) -> set[str]:
        """Which of these document ids the collection holds (without loading their text)."""
        return set(self.content_hashes(collection, doc_ids))

    def count_documents(self, collection: str) -> int:
        """How many documents the collection holds."""
        return self._count("documents", collection)

    # Chunks ------------------------------------------------------------------------------

    def count_chunks(self, collection: str) -> int:
        """How many chunks the collection holds."""
        return self._count("chunks", collection)

    def chunk_ids(self, collection: str) -> set[str]:
        """Every chunk id of the collection."""
        rows = self._connect().execute(
            "SELECT chunk_id FROM chunks WHERE collection = ?", (collection,)
        )
        return {row[0] for row in rows}

    def sentence_vectors_by_text(self, collection: str, doc_ids: Sequence[str]
                                 ) -> dict[str, dict[str, np.ndarray]]:
        """For each stored document among `doc_ids`: its sentences' text -> stored vector."""
        texts = {}
        for doc_id in doc_ids:
            stored = self.document(collection, doc_id)
            if stored is not None:
                texts[doc_id] = stored.document.text
        whole = {doc_id: (0, len(text)) for doc_id, text in texts.items()}
        return {doc_id: {texts[doc_id][s.start:s.end]: s.vector for s in sentences}
                for doc_id, sentences in self._sentences(collection, whole).items()}

    def _count(self, table: str, collection: str) -> int:
        row = self._connect().execute(
            f"SELECT COUNT(*) FROM {table} WHERE collection = ?", (collection,)).fetchone()
        return int(row[0])

    def _bump(self, db: Session, collection: str, doc_ids: Sequence[str]) -> None:
        """Move the collection's version on, logging which documents changed at it (for the
        lexical index, which catches up by reading only those)."""
        db.execute(self._BUMP_VERSION, (collection,))
        version = db.execute("SELECT version FROM collections WHERE name = ?",
                             (collection,)).fetchone()[0]
        db.executemany("INSERT INTO changes (collection, version, doc_id) VALUES (?, ?, ?)",
                       [(collection, version, doc_id) for doc_id in sorted(set(doc_ids))])
