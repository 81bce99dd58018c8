"""The store: Chroma (dense vectors), the catalog (documents, text) and BM25, kept in step.

One Chroma collection per citeqa collection holds the chunk vectors; the catalog in the same
data folder holds every document's full text, so a citation can be shown in its document.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
from index.settings import Settings

log = logging.getLogger(__name__)

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,490})[A-Za-z0-9]$")
# Each collection's sentence vectors live in a second Chroma collection of this suffix.
SENTENCES_SUFFIX = ".sentences"
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def validate_collection_name(name: str) -> str:
    """Return the name if Chroma accepts it, else raise `InvalidInput` saying why."""
    if (
        not isinstance(name, str)
        or not _COLLECTION_NAME.match(name)
        or ".." in name
        or _IPV4.match(name)
        or name.endswith(SENTENCES_SUFFIX)
    ):
        raise InvalidInput(
            f"invalid collection name {name!r}: use 3-492 characters from letters, digits, "
            "'.', '_' and '-', starting and ending with a letter or digit, and not ending in "
            f"{SENTENCES_SUFFIX!r}",
            code="invalid_collection",
        )
    return name


@dataclass(frozen=True)
class DenseHit:
    """A chunk found by vector similarity (cosine, higher is closer)."""

    chunk_id: str
    score: float


def sentence_id(chunk_id: str, position: int) -> str:
    """The Chroma id of a document's `position`-th sentence, which starts in that chunk."""
    return f"{chunk_id}::s{position}"


def chunk_of_sentence(sentence_vector_id: str) -> str:
    """The chunk id inside a sentence's Chroma id."""
    return sentence_vector_id.rsplit("::", 1)[0]


def _persistent_client(path: Path, *, fresh: bool = False) -> Any:
    """Embedded Chroma in `path`; with `fresh`, a new instance that reads the folder anew.

    chromadb keeps one instance per folder per process and never sees what other processes
    write to its in-memory index; dropping it from that cache (a private table) is the only
    way to reload. Handles still in use keep working on the old instance until released.
    """
    if fresh:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(path), None)
    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))


def chroma_client(settings: Settings) -> Any:
    """A client of the Chroma server `CITEQA_CHROMA_URL` names; `ConfigurationError` if down."""
    assert settings.chroma_url is not None
    url = urlsplit(settings.chroma_url)
    ssl = url.scheme == "https"
    try:
        return chromadb.HttpClient(
            host=url.hostname or "localhost", port=url.port or (443 if ssl else 8000), ssl=ssl,
            headers=settings.chroma_header_map() or None,
            settings=ChromaSettings(anonymized_telemetry=False),
            tenant=settings.chroma_tenant, database=settings.chroma_database,
        )
    # chromadb raises ValueError, httpx errors or its own errors for an unreachable server.
    except Exception as exc:
        raise ConfigurationError(
            f"cannot use the Chroma server at {settings.chroma_url} ({exc}); start it "
            "(chroma run --host HOST --port PORT --path FOLDER) or unset CITEQA_CHROMA_URL",
            code="chroma_unavailable",
        ) from exc


class Store:
    """All collections under one data folder (vectors there, or on a Chroma server)."""

    def __init__(self, data_dir: Path, *, client: Any | None = None,
                 location: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.data_dir / "catalog.sqlite3")
        self.embedded = client is None
        self.client = client or _persistent_client(self.data_dir / "chroma")
        self._lock_path = self.data_dir / "write.lock"
        self.location = location or f"the embedded Chroma in {self.data_dir / 'chroma'}"
        self._open: dict[str, CollectionStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store the settings describe: embedded Chroma, or the server at chroma_url."""
        if not settings.chroma_url:
            return cls(settings.data_dir)
        return cls(settings.data_dir, client=chroma_client(settings),
                   location=f"the Chroma server {settings.chroma_url} (database "
                            f"{settings.chroma_database!r})")

    def reachable(self) -> bool:
        """Whether the vector store answers (always, when embedded; a heartbeat, on a server)."""
        try:
            self.client.heartbeat()
        # Any failure to answer, whatever chromadb raises for it, means "not reachable".
        except Exception:
            return False
        return True

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Exclusive across processes sharing the data folder, for every write and repair.

        An OS file lock: released by the kernel when its holder dies, even by kill -9.
        """
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def collections(self) -> list[CollectionRecord]:
        """Every collection in the data folder."""
        return self.catalog.collections()

    def collection(self, name: str) -> CollectionStore:
        """An existing collection; `NotFound` if there is none of that name."""
        validate_collection_name(name)
        with self._lock:
            record = self.catalog.collection(name)
            if record is None:
                self._open.pop(name, None)
                raise NotFound(
                    f"collection {name!r} does not exist; ingest documents into it first "
                    f"(citeqa ingest PATH --collection {name})",
                    code="collection_not_found",
                )
            store = self._open.get(name)
            if store is not None and self.embedded and record.version != store.seen_version:
                # Another process wrote to the folder: embedded Chroma keeps its index in
                # memory and would not search what that process added. Read it anew.
                log.info("collection %s changed in another process; reloading vectors", name)
                self.client = _persistent_client(self.data_dir / "chroma", fresh=True)
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
        created = self.catalog.collection(name) is None
        if created:
            self.catalog.create_collection(name, model=model, dimension=dimension)
        try:
            store = self.collection(name)
        except ConfigurationError:
            # The Chroma side refused (another folder's collection): record nothing here.
            if created:
                self.catalog.drop_collection(name)
            raise
        store.check_model(model, dimension)
        return store

    def delete_collection(self, name: str) -> None:
        """Remove a collection: its vectors, documents and lexical index."""
        store = self.collection(name)
        with self.write_lock():
            self.catalog.drop_collection(name)
            for chroma_name in (name, name + SENTENCES_SUFFIX):
                with contextlib.suppress(ValueError, chromadb.errors.NotFoundError):
                    self.client.delete_collection(chroma_name)
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
        self.write_lock = store.write_lock
        names = (record.name, record.name + SENTENCES_SUFFIX)
        existing = {c.name for c in store.client.list_collections()}
        if not set(names) <= existing and store.catalog.count_chunks(record.name):
            # Opening would "repair" every document away: the vectors are elsewhere.
            raise ConfigurationError(
                f"collection {record.name!r} has documents in {store.catalog.path} but its "
                f"vectors are not in {store.location}; use the Chroma this folder was built "
                "with (check CITEQA_CHROMA_URL and CITEQA_CHROMA_DATABASE)",
                code="vectors_not_found",
            )
        owner = {"citeqa_model": record.model, "citeqa_catalog": store.catalog.id}
        self.chroma, self.sentence_vectors = (
            store.client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                metadata=owner)
            for name in names)
        for chroma_collection in (self.chroma, self.sentence_vectors):
            _check_owner(chroma_collection, store.catalog.id, record.name)
        self.lexical = LexicalIndex(store.catalog, record.name,
                                    store.data_dir / "lexical" / record.name)
        # The catalog version this process's view of the vectors is known to match.
        self.seen_version = record.version
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
        metadatas: list[dict[str, str | int | float | bool]] = []
        sentence_ids: list[str] = []
        sentence_vectors: list[np.ndarray] = []
        sentence_metadatas: list[dict[str, str | int | float | bool]] = []
        catalog_items = []
        for prepared in items:
            document = prepared.document
            content_hash = document.content_hash
            chunk_ids = [chunk.chunk_id(content_hash) for chunk in prepared.chunks]
            catalog_items.append((prepared, chunk_ids))
            chunk_metadatas = [_chunk_metadata(document, chunk) for chunk in prepared.chunks]
            ids.extend(chunk_ids)
            vectors.extend(prepared.chunk_vectors)
            metadatas.extend(chunk_metadatas)
            homes = sentence_chunks(prepared.chunks, prepared.sentences)
            for position, (home, vector) in enumerate(
                    zip(homes, prepared.sentence_vectors, strict=True)):
                sentence_ids.append(sentence_id(chunk_ids[home], position))
                sentence_vectors.append(vector)
                sentence_metadatas.append(_filterable(chunk_metadatas[home])
                                          | {"chunk_id": chunk_ids[home]})
        # Vectors first, catalog second: the catalog commit is what makes documents visible.
        with self.write_lock():
            # No chunk text: it lives in the catalog, and Chroma's full-text index of it
            # doubled the cost of this write (measured) for something nothing reads.
            self._upsert(self.chroma, ids, vectors, metadatas)
            self._upsert(self.sentence_vectors, sentence_ids, sentence_vectors,
                         sentence_metadatas)
            stale = self.catalog.write_documents(self.name, catalog_items)
            self._delete_vectors(stale)
            self.seen_version = self.catalog.version(self.name)

    def _upsert(self, target: Any, ids: list[str], vectors: list[np.ndarray],
                metadatas: list[dict[str, str | int | float | bool]]) -> None:
        for offset in range(0, len(ids), self._max_batch):
            window = slice(offset, offset + self._max_batch)
            target.upsert(
                ids=ids[window],
                embeddings=np.asarray(vectors[window], dtype=np.float32),
                metadatas=metadatas[window],
            )

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the catalog, the vectors and (by version) the lexical index."""
        existing = self.catalog.existing_doc_ids(self.name, doc_ids)
        missing = [doc_id for doc_id in doc_ids if doc_id not in existing]
        if missing:
            raise NotFound(
                f"no document {missing[0]!r} in collection {self.name!r}",
                code="document_not_found",
            )
        with self.write_lock():
            removed = self.catalog.delete_documents(self.name, doc_ids)
            self._delete_vectors(removed)
            self.seen_version = self.catalog.version(self.name)
        self.lexical.refresh()

    def _delete_vectors(self, chunk_ids: Sequence[str]) -> None:
        # Windows well under SQLite's parameter limit, which Chroma's `$in` runs into.
        for offset in range(0, len(chunk_ids), 500):
            window = list(chunk_ids[offset:offset + 500])
            self.chroma.delete(ids=window)
            where: dict[str, Any] = {"chunk_id": {"$in": window}}
            self.sentence_vectors.delete(where=where)

    def reconcile(self) -> None:
        """Remove vectors an interrupted run left behind, and documents whose vectors are lost."""
        if self._counts_agree():
            return
        # Under the write lock, so another process's write in progress is not taken for the
        # leftovers of a killed one.
        with self.write_lock():
            if not self._counts_agree():
                self._repair()
                self.seen_version = self.catalog.version(self.name)

    def _counts_agree(self) -> bool:
        return bool(self.chroma.count() == self.catalog.count_chunks(self.name)
                    and self.sentence_vectors.count() == self.catalog.count_sentences(self.name))

    def _repair(self) -> None:
        catalog_ids = self.catalog.chunk_ids(self.name)
        chroma_ids = _all_ids(self.chroma)
        sentence_ids = _all_ids(self.sentence_vectors)
        orphans = sorted((chroma_ids | {chunk_of_sentence(sid) for sid in sentence_ids})
                         - catalog_ids)
        if orphans:
            log.info("removing vectors of %d orphaned chunks from %s", len(orphans), self.name)
            self._delete_vectors(orphans)
        # A document missing any chunk vector or sentence vector is incomplete: re-ingest it.
        stored_sentences = Counter(_doc_of_chunk(chunk_of_sentence(sid)) for sid in sentence_ids
                                   if chunk_of_sentence(sid) in catalog_ids)
        lost_docs = sorted(
            {_doc_of_chunk(cid) for cid in catalog_ids - chroma_ids}
            | {doc_id for doc_id, count in self.catalog.sentence_counts(self.name).items()
               if stored_sentences.get(doc_id, 0) != count}
        )
        if lost_docs:
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
        if k <= 0:
            return []
        where = self._where(filters)
        # No count() first: Chroma returns what it has, and count() costs more than the query
        # at 100k chunks (and holds the GIL in embedded mode).
        result = self.chroma.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=where,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [DenseHit(cid, 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    def sentence_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                        ) -> list[DenseHit]:
        """Chunks holding the sentences closest to the vector, scored by their best sentence."""
        if k <= 0:
            return []
        result = self.sentence_vectors.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            # Several of the closest sentences often share a chunk.
            n_results=2 * k,
            where=self._where(filters),
            include=["distances"],
        )
        best: dict[str, float] = {}
        for sid, distance in zip(result["ids"][0], (result["distances"] or [[]])[0],
                                 strict=True):
            best.setdefault(chunk_of_sentence(sid), 1.0 - float(distance))
        return [DenseHit(chunk_id, score) for chunk_id, score in list(best.items())[:k]]

    def _where(self, filters: Filters | None) -> dict[str, Any] | None:
        """The Chroma `where` of the filters, `as_of` included."""
        filters, after = self._as_of(filters)
        if filters is None:
            return None
        where = _chroma_where(filters)
        if not filters.as_of:
            return where
        # Chroma cannot match a missing key and an undated document's vectors carry no
        # date_num, so the catalog names the documents to leave out (or keep): nothing new is
        # stored on the vectors, and data folders made before as_of existed work as they are.
        number = date_number(filters.as_of)
        undated = self.catalog.undated(self.name)
        clause: dict[str, Any]
        if not undated:
            clause = {"date_num": {"$lte": number}}
        elif len(after) <= len(undated):
            clause = {"doc_id": {"$nin": after}}
        else:
            clause = {"$or": [{"date_num": {"$lte": number}}, {"doc_id": {"$in": undated}}]}
        if where is None:
            return clause
        return {"$and": [*where.get("$and", [where]), clause]}

    def _as_of(self, filters: Filters | None) -> tuple[Filters | None, list[str]]:
        """The filters without `as_of` when no document is dated after it; the ids that are."""
        if filters is None or not filters.as_of:
            return filters, []
        number = date_number(filters.as_of)
        assert number is not None
        after = self.catalog.dated_after(self.name, number)
        if after:
            return filters, after
        rest = replace(filters, as_of=None)
        return (None if rest.empty else rest), []

    def lexical_search(self, tokens: list[str], k: int, filters: Filters | None = None
                       ) -> list[LexicalHit]:
        """The `k` best BM25 chunks for the tokens that pass the filters."""
        allowed = None
        filters, _ = self._as_of(filters)
        if filters and not filters.empty:
            allowed = self.catalog.matching_doc_ids(self.name, filters)
            if not allowed:
                return []
        return self.lexical.search(tokens, k, allowed_docs=allowed)


def sentence_chunks(chunks: Sequence[Chunk], sentences: Sequence[tuple[int, int]]) -> list[int]:
    """For each sentence, the index of the chunk it starts in (the first, where they overlap)."""
    homes = []
    current = 0
    for start, _ in sentences:
        while current + 1 < len(chunks) and chunks[current].end <= start:
            current += 1
        homes.append(current)
    return homes


def _check_owner(chroma_collection: Any, catalog_id: str, name: str) -> None:
    owner = (chroma_collection.metadata or {}).get("citeqa_catalog")
    # Collections made before ownership was recorded have none; they are this folder's own.
    if owner is not None and owner != catalog_id:
        raise ConfigurationError(
            f"the Chroma collection {chroma_collection.name!r} belongs to another citeqa data "
            f"folder; every citeqa process using one Chroma server must share one "
            f"CITEQA_DATA_DIR, or use a different collection name than {name!r}",
            code="chroma_collection_taken",
        )


def _doc_of_chunk(chunk_id: str) -> str:
    return chunk_id.rsplit("::", 2)[0]


def _all_ids(collection: Any) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = collection.get(include=[], limit=10_000, offset=offset)
        if not page["ids"]:
            return ids
        ids.update(page["ids"])
        offset += len(page["ids"])


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


# What a search filter or a delete can ask of a vector (see `_chroma_where`). Sentence vectors
# carry only these: every metadata field is a row Chroma indexes, ten or more per chunk.
_FILTERABLE = ("doc_id", "source", "date_num")


def _filterable(metadata: dict[str, str | int | float | bool]
                ) -> dict[str, str | int | float | bool]:
    return {key: value for key, value in metadata.items() if key in _FILTERABLE}


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
