"""The dense vectors, in Chroma: the client (embedded or a server) and each collection's vectors.

Each citeqa collection has two Chroma collections: one of chunk vectors, named as the citeqa
collection, and one of sentence vectors, named with `SENTENCES_SUFFIX`. Nothing here knows the
catalog: `index.store` decides what to write, when, and what a vector's id means.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from core.documents import Filters
from core.errors import ConfigurationError, InvalidInput
from core.settings import Settings
from index.vector_metadata import DateCut, Metadata, chroma_where

# Each collection's sentence vectors live in a second Chroma collection of this suffix.
SENTENCES_SUFFIX = ".sentences"

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,490})[A-Za-z0-9]$")
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


class SentenceHit(NamedTuple):
    """A sentence vector found by similarity (cosine, higher is closer)."""

    sentence_id: str
    score: float


class VectorCounts(NamedTuple):
    """How many chunk vectors and sentence vectors a collection holds."""

    chunks: int
    sentences: int


class VectorIds(NamedTuple):
    """The ids of every chunk vector and every sentence vector of a collection."""

    chunks: set[str]
    sentences: set[str]


def sentence_id(chunk_id: str, position: int) -> str:
    """The Chroma id of a document's `position`-th sentence, which starts in that chunk."""
    return f"{chunk_id}::s{position}"


def chunk_of_sentence(sentence_vector_id: str) -> str:
    """The chunk id inside a sentence's Chroma id."""
    return sentence_vector_id.rsplit("::", 1)[0]


def persistent_client(path: Path, *, fresh: bool = False) -> Any:
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


class VectorStore:
    """The Chroma client of one data folder: embedded in the folder, or a server."""

    def __init__(self, client: Any, *, location: str, path: Path | None = None) -> None:
        self._client = client
        # Set for embedded Chroma only: what `reload` reopens.
        self._path = path
        self.location = location

    @classmethod
    def embedded(cls, path: Path) -> VectorStore:
        """Chroma embedded in the folder `path`."""
        return cls(persistent_client(path), location=f"the embedded Chroma in {path}", path=path)

    @classmethod
    def server(cls, settings: Settings) -> VectorStore:
        """The Chroma server the settings name; `ConfigurationError` if it does not answer."""
        return cls(chroma_client(settings),
                   location=f"the Chroma server {settings.chroma_url} (database "
                            f"{settings.chroma_database!r})")

    @property
    def is_embedded(self) -> bool:
        """Whether Chroma runs in this process (and keeps its index in this process's memory)."""
        return self._path is not None

    def reachable(self) -> bool:
        """Whether Chroma answers (always, when embedded; a heartbeat, on a server)."""
        try:
            self._client.heartbeat()
        # Any failure to answer, whatever chromadb raises for it, means "not reachable".
        except Exception:
            return False
        return True

    def reload(self) -> None:
        """Read an embedded Chroma's folder anew, to see what other processes wrote to it."""
        if self._path is not None:
            self._client = persistent_client(self._path, fresh=True)

    def close(self) -> None:
        """Release the client, as a process's exit does."""
        self._client.close()

    def exists(self, name: str) -> bool:
        """Whether both Chroma collections of the citeqa collection `name` exist."""
        existing = {c.name for c in self._client.list_collections()}
        return {name, name + SENTENCES_SUFFIX} <= existing

    def open(self, name: str, *, model: str, catalog_id: str) -> ChromaVectors:
        """The vectors of collection `name`, created if needed, for the catalog `catalog_id`."""
        return ChromaVectors(self._client, name, model=model, catalog_id=catalog_id)

    def drop(self, name: str) -> None:
        """Delete both Chroma collections of `name` (those that exist)."""
        for chroma_name in (name, name + SENTENCES_SUFFIX):
            with contextlib.suppress(ValueError, chromadb.errors.NotFoundError):
                self._client.delete_collection(chroma_name)


class ChromaVectors:
    """One citeqa collection's vectors: a Chroma collection of chunks, one of sentences."""

    def __init__(self, client: Any, name: str, *, model: str, catalog_id: str) -> None:
        owner = {"citeqa_model": model, "citeqa_catalog": catalog_id}
        self._chunks, self._sentences = (
            client.get_or_create_collection(
                chroma_name, embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}}, metadata=owner)
            for chroma_name in (name, name + SENTENCES_SUFFIX))
        for chroma_collection in (self._chunks, self._sentences):
            _check_owner(chroma_collection, catalog_id, name)
        self._max_batch = int(client.get_max_batch_size())

    def upsert_chunks(self, ids: list[str], vectors: Sequence[np.ndarray],
                      metadatas: list[Metadata]) -> None:
        """Write chunk vectors (see `chunk_metadata`), in batches Chroma accepts."""
        self._upsert(self._chunks, ids, vectors, metadatas)

    def upsert_sentences(self, ids: list[str], vectors: Sequence[np.ndarray],
                         metadatas: list[Metadata]) -> None:
        """Write sentence vectors (see `sentence_metadata`), in batches Chroma accepts."""
        self._upsert(self._sentences, ids, vectors, metadatas)

    def _upsert(self, target: Any, ids: list[str], vectors: Sequence[np.ndarray],
                metadatas: list[Metadata]) -> None:
        # No chunk text: it lives in the catalog, and Chroma's full-text index of it
        # doubled the cost of a write (measured) for something nothing reads.
        for offset in range(0, len(ids), self._max_batch):
            window = slice(offset, offset + self._max_batch)
            target.upsert(
                ids=ids[window],
                embeddings=np.asarray(vectors[window], dtype=np.float32),
                metadatas=metadatas[window],
            )

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove the chunks' vectors and the vectors of the sentences that start in them."""
        # Windows well under SQLite's parameter limit, which Chroma's `$in` runs into.
        for offset in range(0, len(chunk_ids), 500):
            window = list(chunk_ids[offset:offset + 500])
            self._chunks.delete(ids=window)
            where: dict[str, Any] = {"chunk_id": {"$in": window}}
            self._sentences.delete(where=where)

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None,
                     cut: DateCut | None = None) -> list[DenseHit]:
        """The `k` chunks closest to the vector that pass the filters."""
        return self.chunk_hits(vector, k, chroma_where(filters, cut))

    def chunk_hits(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None
                   ) -> list[DenseHit]:
        """The `n` chunk vectors closest to the vector that match a Chroma `where`."""
        # No count() first: Chroma returns what it has, and count() costs more than the query
        # at 100k chunks (and holds the GIL in embedded mode).
        result = self._chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=n, where=where, include=["distances"])
        ids = result["ids"][0]
        distances = (result["distances"] or [[]])[0]
        return [DenseHit(cid, 1.0 - float(d)) for cid, d in zip(ids, distances, strict=True)]

    def sentence_search(self, vector: np.ndarray, k: int, filters: Filters | None = None,
                        cut: DateCut | None = None) -> list[DenseHit]:
        """Chunks holding the sentences closest to the vector, scored by their best sentence."""
        # Several of the closest sentences often share a chunk.
        hits = self.sentence_hits(vector, 2 * k, chroma_where(filters, cut))
        return best_chunks(hits, k)

    def sentence_hits(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None
                      ) -> list[SentenceHit]:
        """The `n` sentence vectors closest to the vector that match a Chroma `where`."""
        result = self._sentences.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=n, where=where, include=["distances"])
        return [SentenceHit(sid, 1.0 - float(distance)) for sid, distance in
                zip(result["ids"][0], (result["distances"] or [[]])[0], strict=True)]

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of these chunks (ids in the order of the rows)."""
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for offset in range(0, len(chunk_ids), 500):
            page = self._chunks.get(ids=list(chunk_ids[offset:offset + 500]),
                                    include=["embeddings"])
            ids.extend(page["ids"])
            rows.extend(page["embeddings"])
        return ids, _unit_rows(rows)

    def sentence_vectors(self, chunk_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of the sentences that start in these chunks, with their ids."""
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for offset in range(0, len(chunk_ids), 500):
            where: dict[str, Any] = {"chunk_id": {"$in": list(chunk_ids[offset:offset + 500])}}
            page = self._sentences.get(where=where, include=["embeddings"])
            ids.extend(page["ids"])
            rows.extend(page["embeddings"])
        return ids, _unit_rows(rows)

    def count(self) -> VectorCounts:
        """How many chunk and sentence vectors there are."""
        return VectorCounts(self._chunks.count(), self._sentences.count())

    def ids(self) -> VectorIds:
        """Every chunk vector's id and every sentence vector's id."""
        return VectorIds(_all_ids(self._chunks), _all_ids(self._sentences))


def best_chunks(sentence_hits: Sequence[SentenceHit], k: int) -> list[DenseHit]:
    """The first `k` chunks the sentences (best first) start in, scored by their best one."""
    best: dict[str, float] = {}
    for hit in sentence_hits:
        best.setdefault(chunk_of_sentence(hit.sentence_id), hit.score)
    return [DenseHit(chunk_id, score) for chunk_id, score in list(best.items())[:k]]


def _unit_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Vectors as unit-length rows, so a dot product is their cosine (as Chroma's space)."""
    matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1 if rows else 0)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


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


def _all_ids(collection: Any) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = collection.get(include=[], limit=10_000, offset=offset)
        if not page["ids"]:
            return ids
        ids.update(page["ids"])
        offset += len(page["ids"])
