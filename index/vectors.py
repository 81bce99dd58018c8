"""The dense vectors, in Chroma: the client (embedded or a server) and each collection's vectors.

Each citeqa collection has one Chroma collection of chunk vectors, named as the citeqa
collection. Sentence vectors live only in the catalog: retrieval ranks the chunks the other
searches found by their best sentence, and a second HNSW index of four times as many vectors
cost most of the memory at a million chunks for no better recall (README, "Sentence vectors").
Nothing here knows the catalog: `index.store` decides what to write, when, and what a vector's
id means.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from core.errors import ConfigurationError, InvalidInput
from core.settings import Settings
from index.vector_metadata import Metadata

# Folders made before 2026-11-30 kept each collection's sentence vectors in a second Chroma
# collection of this suffix; opening the collection deletes it. Names may not end in it.
SENTENCES_SUFFIX = ".sentences"

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,490})[A-Za-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# The files of a local HNSW segment (hnswlib's), by which a deleted one's folder is known.
_HNSW_FILES = ("header.bin", "data_level0.bin")
_SEGMENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

log = logging.getLogger(__name__)


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
        store = cls(persistent_client(path), location=f"the embedded Chroma in {path}",
                    path=path)
        # Also what an earlier citeqa's deletes left behind.
        store._free_deleted_segments()
        return store

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
        """Whether the Chroma collection of the citeqa collection `name` exists."""
        return name in {c.name for c in self._client.list_collections()}

    def open(self, name: str, *, model: str, catalog_id: str) -> ChromaVectors:
        """The vectors of collection `name`, created if needed, for the catalog `catalog_id`."""
        vectors = ChromaVectors(self._client, name, model=model, catalog_id=catalog_id)
        if _drop_sentence_vectors(self._client, name, catalog_id):
            self._free_deleted_segments()
        return vectors

    def drop(self, name: str) -> None:
        """Delete the Chroma collection of `name` (and an older folder's sentence vectors)."""
        for chroma_name in (name, name + SENTENCES_SUFFIX):
            with contextlib.suppress(ValueError, chromadb.errors.NotFoundError):
                self._client.delete_collection(chroma_name)
        self._free_deleted_segments()

    def _free_deleted_segments(self) -> None:
        """Remove the index files of deleted collections from an embedded Chroma's folder.

        Embedded Chroma 1.5 forgets a deleted collection but leaves its HNSW files on disk
        (chroma-core/chroma#5520): gigabytes at a million vectors. A folder is removed only
        when it is named like a segment id, holds HNSW index files, and Chroma's own table of
        segments no longer lists it; if that table cannot be read (another Chroma version),
        nothing is removed.
        """
        if self._path is None:
            return
        try:
            with contextlib.closing(sqlite3.connect(
                    f"file:{self._path / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
                live = {str(row[0]) for row in db.execute("SELECT id FROM segments")}
        except sqlite3.Error as exc:
            log.warning("left the files of deleted Chroma collections in %s: %s", self._path, exc)
            return
        for entry in self._path.iterdir():
            if (entry.is_dir() and _SEGMENT_ID.match(entry.name) and entry.name not in live
                    and any((entry / name).exists() for name in _HNSW_FILES)):
                log.info("removing %s, the files of a deleted Chroma collection", entry)
                shutil.rmtree(entry, ignore_errors=True)


class ChromaVectors:
    """One citeqa collection's chunk vectors: a Chroma collection."""

    def __init__(self, client: Any, name: str, *, model: str, catalog_id: str) -> None:
        owner = {"citeqa_model": model, "citeqa_catalog": catalog_id}
        self._chunks = client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata=owner)
        _check_owner(self._chunks, catalog_id, name)
        self._max_batch = int(client.get_max_batch_size())

    def upsert_chunks(self, ids: list[str], vectors: Sequence[np.ndarray],
                      metadatas: list[Metadata]) -> None:
        """Write chunk vectors (see `chunk_metadata`), in batches Chroma accepts."""
        # No chunk text: it lives in the catalog, and Chroma's full-text index of it
        # doubled the cost of a write (measured) for something nothing reads.
        for offset in range(0, len(ids), self._max_batch):
            window = slice(offset, offset + self._max_batch)
            self._chunks.upsert(
                ids=ids[window],
                embeddings=np.asarray(vectors[window], dtype=np.float32),
                metadatas=metadatas[window],
            )

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove the chunks' vectors."""
        # Windows well under SQLite's parameter limit, which Chroma's `$in` runs into.
        for offset in range(0, len(chunk_ids), 500):
            self._chunks.delete(ids=list(chunk_ids[offset:offset + 500]))

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

    def count(self) -> int:
        """How many chunk vectors there are."""
        return int(self._chunks.count())

    def ids(self) -> set[str]:
        """Every chunk vector's id."""
        return _all_ids(self._chunks)


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


def _drop_sentence_vectors(client: Any, name: str, catalog_id: str) -> bool:
    """Delete the sentence-vector collection an older citeqa kept beside the chunk vectors;
    whether there was one to delete."""
    try:
        legacy = client.get_collection(name + SENTENCES_SUFFIX)
    except (ValueError, chromadb.errors.NotFoundError):
        return False
    # Another folder's collection of that name (unlikely but possible) is not ours to delete.
    if (legacy.metadata or {}).get("citeqa_catalog") not in (None, catalog_id):
        return False
    log.info("deleting %s: sentence vectors are now read from the catalog", legacy.name)
    with contextlib.suppress(ValueError, chromadb.errors.NotFoundError):
        client.delete_collection(legacy.name)
    return True


def _all_ids(collection: Any) -> set[str]:
    ids: set[str] = set()
    offset = 0
    while True:
        page = collection.get(include=[], limit=10_000, offset=offset)
        if not page["ids"]:
            return ids
        ids.update(page["ids"])
        offset += len(page["ids"])
