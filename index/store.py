"""The store: Chroma (dense vectors), the catalog (documents, text) and BM25, kept in step.

One Chroma collection per citeqa collection holds the chunk vectors; the catalog in the same
data folder holds every document's full text, so a citation can be shown in its document.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from index.catalog import Catalog, CollectionRecord
from index.errors import ConfigurationError, InvalidInput, NotFound
from index.lexical import LexicalHit, LexicalIndex
from index.models import (
    Chunk,
    ChunkRecord,
    Document,
    Filters,
    PreparedDocument,
    StoredDocument,
    date_number,
)

log = logging.getLogger(__name__)

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,510})[A-Za-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def validate_collection_name(name: str) -> str:
    """Return the name if Chroma accepts it, else raise `InvalidInput` saying why."""
    if (
        not isinstance(name, str)
        or not _COLLECTION_NAME.match(name)
        or ".." in name
        or _IPV4.match(name)
    ):
        raise InvalidInput(
            f"invalid collection name {name!r}: use 3-512 characters from letters, digits, "
            "'.', '_' and '-', starting and ending with a letter or digit",
            code="invalid_collection",
        )
    return name


@dataclass(frozen=True)
class DenseHit:
    """A chunk found by vector similarity (cosine, higher is closer)."""

    chunk_id: str
    score: float


class Store:
    """All collections under one data folder."""

    def __init__(self, data_dir: Path, *, client: Any | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.data_dir / "catalog.sqlite3")
        self.client = client or chromadb.PersistentClient(
            path=str(self.data_dir / "chroma"),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
        self._open: dict[str, CollectionStore] = {}
        self._lock = threading.Lock()

    def collections(self) -> list[CollectionRecord]:
        """Every collection in the data folder."""
        return self.catalog.collections()

    def collection(self, name: str) -> CollectionStore:
        """An existing collection; `NotFound` if there is none of that name."""
        validate_collection_name(name)
        with self._lock:
            if name in self._open and self.catalog.collection(name) is not None:
                return self._open[name]
            record = self.catalog.collection(name)
            if record is None:
                self._open.pop(name, None)
                raise NotFound(
                    f"collection {name!r} does not exist; ingest documents into it first "
                    f"(citeqa ingest PATH --collection {name})",
                    code="collection_not_found",
                )
            store = CollectionStore(self, record)
            store.reconcile()
            self._open[name] = store
            return store

    def create_collection(self, name: str, *, model: str, dimension: int) -> CollectionStore:
        """The named collection, created for this embedding model if it does not exist."""
        validate_collection_name(name)
        record = self.catalog.collection(name)
        if record is None:
            self.catalog.create_collection(name, model=model, dimension=dimension)
        store = self.collection(name)
        store.check_model(model, dimension)
        return store

    def delete_collection(self, name: str) -> None:
        """Remove a collection: its vectors, documents and lexical index."""
        store = self.collection(name)
        self.catalog.drop_collection(name)
        with contextlib.suppress(ValueError, chromadb.errors.NotFoundError):
            self.client.delete_collection(name)
        with self._lock:
            self._open.pop(name, None)
        shutil.rmtree(store.lexical.folder, ignore_errors=True)


class CollectionStore:
    """One collection: write and delete documents, search it densely and lexically."""

    def __init__(self, store: Store, record: CollectionRecord) -> None:
        self.name = record.name
        self.model = record.model
        self.dimension = record.dimension
        self.catalog = store.catalog
        self.chroma = store.client.get_or_create_collection(
            record.name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"citeqa_model": record.model},
        )
        self.lexical = LexicalIndex(store.catalog, record.name,
                                    store.data_dir / "lexical" / record.name)
        self._max_batch = int(store.client.get_max_batch_size())

    def check_model(self, model: str, dimension: int) -> None:
        """Refuse to mix vectors of different models in one collection."""
        if model != self.model or dimension != self.dimension:
            raise ConfigurationError(
                f"collection {self.name!r} was built with embedding model {self.model!r} "
                f"({self.dimension} dimensions), not {model!r} ({dimension}); set "
                f"CITEQA_EMBEDDING_MODEL={self.model} or ingest into another collection",
                code="model_mismatch",
            )

    # Writing -----------------------------------------------------------------------------

    def content_hashes(self) -> dict[str, str]:
        """Document id -> content hash of what is stored now."""
        return self.catalog.content_hashes(self.name)

    def write(self, items: Sequence[PreparedDocument]) -> None:
        """Store documents with their chunks, vectors and tokens; all of a batch or nothing."""
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        texts: list[str] = []
        metadatas: list[dict[str, str | int | float | bool]] = []
        catalog_items = []
        for prepared in items:
            document = prepared.document
            content_hash = document.content_hash
            chunk_ids = [chunk.chunk_id(content_hash) for chunk in prepared.chunks]
            catalog_items.append((prepared, chunk_ids))
            for chunk, chunk_id, vector in zip(prepared.chunks, chunk_ids,
                                               prepared.chunk_vectors, strict=True):
                ids.append(chunk_id)
                vectors.append(vector)
                texts.append(chunk.text)
                metadatas.append(_chunk_metadata(document, chunk))
        # Vectors first, catalog second: the catalog commit is what makes documents visible.
        for offset in range(0, len(ids), self._max_batch):
            window = slice(offset, offset + self._max_batch)
            self.chroma.upsert(
                ids=ids[window],
                embeddings=np.asarray(vectors[window], dtype=np.float32),
                documents=texts[window],
                metadatas=metadatas[window],  # type: ignore[arg-type]
            )
        stale = self.catalog.write_documents(self.name, catalog_items)
        self._delete_vectors(stale)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the catalog, the vectors and (by version) the lexical index."""
        existing = self.catalog.existing_doc_ids(self.name, doc_ids)
        missing = [doc_id for doc_id in doc_ids if doc_id not in existing]
        if missing:
            raise NotFound(
                f"no document {missing[0]!r} in collection {self.name!r}",
                code="document_not_found",
            )
        removed = self.catalog.delete_documents(self.name, doc_ids)
        self._delete_vectors(removed)
        self.lexical.refresh()

    def _delete_vectors(self, chunk_ids: Sequence[str]) -> None:
        for offset in range(0, len(chunk_ids), self._max_batch):
            self.chroma.delete(ids=list(chunk_ids[offset:offset + self._max_batch]))

    def reconcile(self) -> None:
        """Remove vectors an interrupted run left behind, and documents whose vectors are lost."""
        known = self.catalog.count_chunks(self.name)
        if self.chroma.count() == known:
            return
        catalog_ids = self.catalog.chunk_ids(self.name)
        chroma_ids: set[str] = set()
        offset = 0
        while True:
            page = self.chroma.get(include=[], limit=10_000, offset=offset)
            if not page["ids"]:
                break
            chroma_ids.update(page["ids"])
            offset += len(page["ids"])
        orphans = sorted(chroma_ids - catalog_ids)
        if orphans:
            log.info("removing %d orphaned vectors from %s", len(orphans), self.name)
            self._delete_vectors(orphans)
        lost = catalog_ids - chroma_ids
        if lost:
            lost_docs = sorted({cid.rsplit("::", 2)[0] for cid in lost})
            log.warning("vectors lost for %d documents in %s; they will be re-ingested",
                        len(lost_docs), self.name)
            self._delete_vectors(self.catalog.delete_documents(self.name, lost_docs))

    # Reading -----------------------------------------------------------------------------

    def document(self, doc_id: str) -> StoredDocument:
        """One document with its full text; `NotFound` if unknown."""
        stored = self.catalog.document(self.name, doc_id)
        if stored is None:
            raise NotFound(
                f"no document {doc_id!r} in collection {self.name!r}", code="document_not_found"
            )
        return stored

    def documents(self) -> list[StoredDocument]:
        """Every document, by id."""
        return self.catalog.documents(self.name)

    def count_documents(self) -> int:
        """Number of documents."""
        return self.catalog.count_documents(self.name)

    def count_chunks(self) -> int:
        """Number of chunks."""
        return self.catalog.count_chunks(self.name)

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """Chunks with their documents, by id (unknown ids left out)."""
        return self.catalog.chunk_records(self.name, chunk_ids)

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                     ) -> list[DenseHit]:
        """The `k` chunks closest to the vector that pass the filters."""
        count = self.chroma.count()
        if count == 0 or k <= 0:
            return []
        where = _chroma_where(filters) if filters else None
        result = self.chroma.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],  # type: ignore[arg-type]
            n_results=min(k, count),
            where=where,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [DenseHit(cid, 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    def lexical_search(self, tokens: list[str], k: int, filters: Filters | None = None
                       ) -> list[LexicalHit]:
        """The `k` best BM25 chunks for the tokens that pass the filters."""
        allowed = None
        if filters and not filters.empty:
            allowed = self.catalog.matching_doc_ids(self.name, filters)
            if not allowed:
                return []
        return self.lexical.search(tokens, k, allowed_docs=allowed)


def _chunk_metadata(document: Document, chunk: Chunk) -> dict[str, str | int | float | bool]:
    metadata: dict[str, str | int | float | bool] = {
        "doc_id": document.id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "title": document.title,
    }
    if document.source:
        metadata["source"] = document.source
    if document.url:
        metadata["url"] = document.url
    date_num = date_number(document.date)
    if date_num is not None:
        metadata["date"] = document.date or ""
        metadata["date_num"] = date_num
    return metadata


def _chroma_where(filters: Filters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.doc_ids:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids)}})
    if filters.date_from:
        clauses.append({"date_num": {"$gte": date_number(filters.date_from)}})
    if filters.date_to:
        clauses.append({"date_num": {"$lte": date_number(filters.date_to)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
