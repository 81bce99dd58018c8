"""One collection of the store: write and delete its documents, repair it, read and search it.

Separate from `index.store` (which opens the catalog and the vector store and keeps the
collections of a data folder) because this is what every ingestion and question works on, one
collection at a time; `index.store` re-exports `CollectionStore` and `Coverage` for importers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from core.documents import (
    ChunkRecord,
    DocumentPage,
    Filters,
    PreparedDocument,
    StoredDocument,
    doc_of_chunk,
)
from core.errors import ConfigurationError, NotFound
from index.catalog import CollectionRecord
from index.filtering import CollectionSearch
from index.lexical import LexicalHit, LexicalIndex
from index.vector_metadata import Metadata, chunk_metadata
from index.vectors import DenseHit

if TYPE_CHECKING:
    from index.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Coverage:
    """What a question's filters leave of a collection: its documents, those that pass, and
    the undated ones a date range (`date_from`/`date_to`) left out."""

    documents: int
    matching: int
    undated_left_out: int = 0


class CollectionStore:
    """One collection: write and delete documents, search it densely and lexically."""

    def __init__(self, store: Store, record: CollectionRecord) -> None:
        self.name = record.name
        self.model = record.model
        self.dimension = record.dimension
        self._catalog = store._catalog
        self.write_lock = store.write_lock
        vectors = store._vectors
        if not vectors.exists(record.name) and self._catalog.count_chunks(record.name):
            # Opening would "repair" every document away: the vectors are elsewhere.
            raise ConfigurationError(
                f"collection {record.name!r} has documents in {self._catalog.location} but its "
                f"vectors are not in {vectors.location}; use the Chroma this folder was built "
                "with (check CITEQA_CHROMA_URL and CITEQA_CHROMA_DATABASE)",
                code="vectors_not_found",
            )
        self._vectors = vectors.open(record.name, model=record.model, catalog_id=self._catalog.id)
        self._lexical = LexicalIndex(self._catalog, record.name,
                                     store._lexical_folder(record.name))
        self._search = CollectionSearch(self._catalog, record.name, self._vectors,
                                        self._lexical)
        # The catalog version this process's view of the vectors is known to match.
        self.seen_version = record.version

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

    def content_hashes(self, doc_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Document id -> content hash of what is stored now (of every document, or of those
        among `doc_ids`)."""
        return self._catalog.content_hashes(self.name, doc_ids)

    def known_sentence_vectors(self, doc_ids: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        """For each stored document among `doc_ids`: its sentences' text -> stored vector."""
        return self._catalog.sentence_vectors_by_text(self.name, doc_ids)

    def write(self, items: Sequence[PreparedDocument]) -> None:
        """Store documents with their chunks, vectors and tokens; all of a batch or nothing."""
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        metadatas: list[Metadata] = []
        catalog_items = []
        for prepared in items:
            document = prepared.document
            content_hash = document.content_hash
            chunk_ids = [chunk.chunk_id(content_hash) for chunk in prepared.chunks]
            catalog_items.append((prepared, chunk_ids))
            ids.extend(chunk_ids)
            vectors.extend(prepared.chunk_vectors)
            metadatas.extend(chunk_metadata(document, chunk) for chunk in prepared.chunks)
        # Vectors first, catalog second (with the sentence vectors): the catalog commit is what
        # makes documents visible.
        with self.write_lock():
            self._vectors.upsert_chunks(ids, vectors, metadatas)
            stale = self._catalog.write_documents(self.name, catalog_items)
            self._vectors.delete(stale)
            self.seen_version = self._catalog.version(self.name)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the catalog, the vectors and (by version) the lexical index."""
        existing = self._catalog.existing_doc_ids(self.name, doc_ids)
        missing = [doc_id for doc_id in doc_ids if doc_id not in existing]
        if missing:
            raise NotFound(
                f"no document {missing[0]!r} in collection {self.name!r}",
                code="document_not_found",
            )
        with self.write_lock():
            removed = self._catalog.delete_documents(self.name, doc_ids)
            self._vectors.delete(removed)
            self.seen_version = self._catalog.version(self.name)
        self._lexical.refresh()

    def warm_up(self) -> None:
        """Bring the lexical index up to date now, so the next search does not wait for it."""
        self._lexical.refresh()

    def settle(self) -> None:
        """`warm_up`, then wait for a rebuild of the lexical index it started in the background
        (after a large ingestion), so a process about to exit leaves the rebuild done and
        saved instead of leaving it to the next process that opens the collection."""
        self._lexical.refresh()
        self._lexical.wait_for_merge()

    def reconcile(self) -> None:
        """Remove vectors an interrupted run left behind, and documents whose vectors are lost."""
        if self._counts_agree():
            return
        # Under the write lock, so another process's write in progress is not taken for the
        # leftovers of a killed one.
        with self.write_lock():
            if not self._counts_agree():
                self._repair()
                self.seen_version = self._catalog.version(self.name)

    def _counts_agree(self) -> bool:
        return self._vectors.count() == self._catalog.count_chunks(self.name)

    def _repair(self) -> None:
        catalog_ids = self._catalog.chunk_ids(self.name)
        chroma_ids = self._vectors.ids()
        orphans = sorted(chroma_ids - catalog_ids)
        if orphans:
            log.info("removing vectors of %d orphaned chunks from %s", len(orphans), self.name)
            self._vectors.delete(orphans)
        # A document missing any chunk vector is incomplete: re-ingest it.
        lost_docs = sorted({doc_of_chunk(cid) for cid in catalog_ids - chroma_ids})
        if lost_docs:
            log.warning("vectors lost for %d documents in %s; they will be re-ingested",
                        len(lost_docs), self.name)
            self._vectors.delete(self._catalog.delete_documents(self.name, lost_docs))

    # Reading -----------------------------------------------------------------------------

    def document(self, doc_id: str) -> StoredDocument:
        """One document with its full text; `NotFound` if unknown."""
        stored = self._catalog.document(self.name, doc_id)
        if stored is None:
            raise NotFound(
                f"no document {doc_id!r} in collection {self.name!r}", code="document_not_found"
            )
        return stored

    def documents(self) -> list[StoredDocument]:
        """Every document, by id."""
        return self._catalog.documents(self.name)

    def document_page(self, *, limit: int, cursor: str | None = None) -> DocumentPage:
        """Up to `limit` document summaries after `cursor`, by id, without their text."""
        return self._catalog.document_page(self.name, limit=limit, cursor=cursor)

    def count_documents(self) -> int:
        """Number of documents."""
        return self._catalog.count_documents(self.name)

    def count_chunks(self) -> int:
        """Number of chunks."""
        return self._catalog.count_chunks(self.name)

    def coverage(self, filters: Filters) -> Coverage:
        """How many documents there are and how many pass `filters` (see `Coverage`): counted
        once per catalog version, as every question with a date range reports them."""
        def count() -> Coverage:
            undated_left_out = 0
            if filters.date_from or filters.date_to:
                undated_left_out = self._catalog.count_matching(
                    self.name, replace(filters, date_from=None, date_to=None), undated=True)
            return Coverage(documents=self.count_documents(),
                            matching=self._catalog.count_matching(self.name, filters),
                            undated_left_out=undated_left_out)
        return self._search.per_version(("coverage", filters), count)

    def chunk_ids(self) -> set[str]:
        """The id of every chunk the catalog holds."""
        return self._catalog.chunk_ids(self.name)

    def count_vectors(self) -> int:
        """How many chunk vectors the vector store holds for the collection."""
        return self._vectors.count()

    def vector_ids(self) -> set[str]:
        """The ids of every chunk vector the vector store holds."""
        return self._vectors.ids()

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """Chunks with their documents, by id (unknown ids left out)."""
        return self._catalog.chunk_records(self.name, chunk_ids)

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each token over the collection's chunks."""
        return self._lexical.idf(tokens)

    def dense_search(self, vector: np.ndarray, k: int, filters: Filters | None = None
                     ) -> list[DenseHit]:
        """The `k` chunks closest to the vector that pass the filters."""
        if k <= 0:
            return []
        return self._search.dense(vector, k, filters)

    def lexical_search(self, tokens: list[str], k: int, filters: Filters | None = None
                       ) -> list[LexicalHit]:
        """The `k` best BM25 chunks for the tokens that pass the filters."""
        return self._search.lexical(tokens, k, filters)

    def matching_doc_ids(self, filters: Filters) -> frozenset[str]:
        """The ids of the documents that pass the filters (cached per catalog version)."""
        _, kept = self._search.kept(filters)
        if kept is None:
            return frozenset(self._catalog.content_hashes(self.name))
        return kept.doc_ids
