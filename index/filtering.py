"""Filtered search: each index is given a question's filter the way it searches fastest,
without losing a chunk the unfiltered search would have ranked.

- The catalog finds the documents a filter keeps once per catalog version (`FilterCache`),
  with their chunks' rows in the BM25 index, so BM25 scores only those rows.
- Chunk vectors: when the kept documents hold a fair share of the chunks, the
  unfiltered HNSW search is asked for enough more results that at least the wanted number pass,
  and the rest are dropped here (`over_fetched`): exactly the unfiltered ranking, filtered.
  A filter keeping few chunks is searched exactly over its documents' vectors instead.
  Chroma's own `where` on HNSW cost 20 to 300 times an unfiltered query at 100k chunks, so it
  is kept for what neither serves: a filter between the two limits, or an over-fetch that
  came up short.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import numpy as np

from core.documents import Filters, date_number, doc_of_chunk
from index.catalog import Catalog
from index.lexical import LexicalHit, LexicalIndex, RowMask
from index.vector_metadata import DateCut, chroma_where
from index.vectors import ChromaVectors, DenseHit

# Over-fetch at most this many vectors; a filter keeping too few for that is searched exactly
# or, between the two limits, by Chroma's `where`. At 100k chunks an unfiltered query of 3,000
# took 21 ms, of 30 1.6 ms; with a `where`, 430-2,300 ms (README, "Filtered questions").
OVER_FETCH_LIMIT = 3000
# Ask for this many times the results the kept share should yield, for the share's unevenness
# over the ranking.
OVER_FETCH_MARGIN = 1.5
# Chroma runs `$in` lists through SQLite parameters: keep them well under its limit.
ID_LIST_LIMIT = 500
# A filter keeping at most this many chunks is searched exactly, over its documents' vectors
# (fetched once per catalog version and filter, kept for the `EXACT_SETS` latest filters).
EXACT_LIMIT = 500
EXACT_SETS = 8

# Catalog answers kept per catalog version (the latest date, `as_of` cuts, the counts a dated
# question reports): one or two per recent filter.
VERSIONED_ANSWERS = 64

_T = TypeVar("_T")


@dataclass(frozen=True)
class DocumentSet:
    """The documents one filter keeps in one catalog version, and their chunks' BM25 rows."""

    version: int
    doc_ids: frozenset[str]
    rows: RowMask
    chunk_ids: tuple[str, ...] | None = None
    """Their chunks, when few enough to search exactly (`EXACT_LIMIT`)."""

    @property
    def chunk_share(self) -> float:
        """The share of the collection's chunks these documents hold."""
        return len(self.rows.rows) / self.rows.total if self.rows.total else 0.0


@dataclass(frozen=True)
class KeptVectors:
    """The chunk vectors of a filter's few documents, as unit rows."""

    chunk_ids: list[str]
    chunks: np.ndarray


def closest(ids: list[str], matrix: np.ndarray, vector: np.ndarray, n: int
            ) -> list[tuple[str, float]]:
    """The `n` rows most similar to the vector (cosine), best first, exactly."""
    if not ids:
        return []
    query = np.asarray(vector, dtype=np.float32)
    scores = matrix @ (query / (np.linalg.norm(query) or 1.0))
    order = np.argsort(-scores, kind="stable")[:n]
    return [(ids[i], float(scores[i])) for i in order]


class FilterCache:
    """The `DocumentSet` of each recent filter, keyed by catalog version: a write (which bumps
    the version) makes every earlier entry unreachable, so nothing stale is ever served."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[int, Filters], DocumentSet] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: int, filters: Filters,
            compute: Callable[[], DocumentSet]) -> DocumentSet:
        """The cached set of (version, filters), computed and kept if absent."""
        key = (version, filters)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        found = compute()
        with self._lock:
            self._entries[key] = found
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found


def over_fetched(search: Callable[[int], list[DenseHit]], wanted: int, kept: DocumentSet
                 ) -> list[DenseHit] | None:
    """The first `wanted` hits of the unfiltered ranking whose document `kept` holds, or None
    when the filter is too selective to over-fetch, or the over-fetch came up short."""
    if kept.chunk_share <= 0:
        return None
    asked = max(wanted, math.ceil(wanted / kept.chunk_share * OVER_FETCH_MARGIN))
    if asked > OVER_FETCH_LIMIT:
        return None
    while True:
        hits = search(asked)
        passing = [hit for hit in hits if doc_of_chunk(hit.chunk_id) in kept.doc_ids]
        # Fewer hits than asked: the search returned everything there is, nothing is missing.
        if len(passing) >= wanted or len(hits) < asked:
            return passing[:wanted]
        if asked >= OVER_FETCH_LIMIT:
            return None
        # The kept documents rank lower for this question than their share: deeper, as deep as
        # the share that passed says (at least twice), rather than straight to the limit (a
        # query for 3,000 neighbours cost 21 ms at 100k chunks, for 30 1.6 ms).
        needed = math.ceil(wanted * asked / max(len(passing), 1) * OVER_FETCH_MARGIN)
        asked = min(OVER_FETCH_LIMIT, max(2 * asked, needed))


class CollectionSearch:
    """The two searches of one collection (chunk vectors, BM25), filtered."""

    def __init__(self, catalog: Catalog, name: str, vectors: ChromaVectors,
                 lexical: LexicalIndex) -> None:
        self._catalog = catalog
        self._name = name
        self._vectors = vectors
        self._lexical = lexical
        self._cache = FilterCache()
        self._exact: OrderedDict[tuple[int, tuple[str, ...]], KeptVectors] = OrderedDict()
        self._exact_lock = threading.Lock()
        self._answers: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self._answers_lock = threading.Lock()

    def dense(self, vector: np.ndarray, k: int, filters: Filters | None) -> list[DenseHit]:
        """The `k` chunks closest to the vector that pass the filters."""
        filters, kept = self.kept(filters)
        if kept is None:
            return self._vectors.chunk_hits(vector, k)
        if not kept.doc_ids:
            return []
        vectors = self._kept_vectors(kept)
        if vectors is not None:
            return [DenseHit(cid, score)
                    for cid, score in closest(vectors.chunk_ids, vectors.chunks, vector, k)]
        found = over_fetched(lambda n: self._vectors.chunk_hits(vector, n), k, kept)
        if found is None:
            found = self._vectors.chunk_hits(vector, k, self._where(filters, kept))
        return found

    def lexical(self, tokens: list[str], k: int, filters: Filters | None) -> list[LexicalHit]:
        """The `k` best BM25 chunks for the tokens that pass the filters."""
        _, kept = self.kept(filters)
        if kept is None:
            return self._lexical.search(tokens, k)
        if not kept.doc_ids:
            return []
        return self._lexical.search(tokens, k, allowed_docs=kept.doc_ids, mask=kept.rows)

    def kept(self, filters: Filters | None) -> tuple[Filters | None, DocumentSet | None]:
        """The filters that apply, and the documents they keep; (None, None) if nothing is
        filtered out (an `as_of` no document is dated after leaves everything)."""
        if filters is None or filters.empty:
            return None, None
        # One catalog query per search when the filter was seen in this version: with the
        # PostgreSQL catalog each query is a network hop.
        version = self._catalog.version(self._name)
        filters = self._without_idle_as_of(version, filters)
        if filters is None:
            return None, None
        return filters, self._cache.get(version, filters, lambda: self._document_set(
            version, filters))

    def _without_idle_as_of(self, version: int, filters: Filters) -> Filters | None:
        if not filters.as_of:
            return filters
        number = date_number(filters.as_of)
        assert number is not None
        latest = self._by_version(("latest", version),
                                  lambda: self._catalog.latest_date(self._name))
        if latest is not None and latest > number:
            return filters
        rest = replace(filters, as_of=None)
        return None if rest.empty else rest

    def per_version(self, key: tuple[object, ...], compute: Callable[[], _T]) -> _T:
        """A catalog answer about this collection (`key` names it), computed once per catalog
        version: kept until the next write."""
        return self._by_version((*key, self._catalog.version(self._name)), compute)

    def _by_version(self, key: tuple[object, ...], compute: Callable[[], _T]) -> _T:
        """A catalog answer kept until the next write (its key holds the catalog version)."""
        with self._answers_lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return cast(_T, self._answers[key])
        found = compute()
        with self._answers_lock:
            self._answers[key] = found
            while len(self._answers) > VERSIONED_ANSWERS:
                self._answers.popitem(last=False)
        return found

    def _document_set(self, version: int, filters: Filters) -> DocumentSet:
        doc_ids = frozenset(self._catalog.matching_doc_ids(self._name, filters))
        rows = self._lexical.rows_of(doc_ids)
        chunk_ids = None
        if len(rows.rows) <= EXACT_LIMIT and rows.version == version:
            found = self._lexical.chunk_ids_of(rows)
            chunk_ids = None if found is None else tuple(found)
        return DocumentSet(version, doc_ids, rows, chunk_ids)

    def _kept_vectors(self, kept: DocumentSet) -> KeptVectors | None:
        """The vectors of a filter's documents if they are few enough to search exactly."""
        if kept.chunk_ids is None or len(kept.chunk_ids) > EXACT_LIMIT:
            return None
        key = (kept.version, kept.chunk_ids)
        with self._exact_lock:
            found = self._exact.get(key)
            if found is not None:
                self._exact.move_to_end(key)
                return found
        found = KeptVectors(*self._vectors.chunk_vectors(kept.chunk_ids))
        with self._exact_lock:
            self._exact[key] = found
            while len(self._exact) > EXACT_SETS:
                self._exact.popitem(last=False)
        return found

    def _where(self, filters: Filters | None, kept: DocumentSet) -> dict[str, Any]:
        """Chroma's `where` for the kept documents: their ids when few, else the filters."""
        if len(kept.doc_ids) <= ID_LIST_LIMIT:
            return {"doc_id": {"$in": sorted(kept.doc_ids)}}
        cut = None
        if filters is not None and filters.as_of:
            number = date_number(filters.as_of)
            assert number is not None
            cut = self._by_version(("cut", kept.version, number), lambda: DateCut(
                after=self._catalog.dated_after(self._name, number),
                undated=self._catalog.undated(self._name)))
        where = chroma_where(filters, cut)
        assert where is not None
        return where

