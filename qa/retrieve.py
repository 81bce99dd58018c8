"""Stage 2 — retrieval: three rankings, chunk vectors (Chroma), BM25 and the found chunks'
best sentences (vectors from the catalog), fused by weighted reciprocal rank."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date

import numpy as np

from core.documents import ChunkRecord, Filters, date_number, version_of_chunk
from core.settings import Settings
from index.store import CollectionStore
from qa.timeframe import TimeWindow, parse_day


@dataclass
class Candidate:
    """A retrieved chunk with the evidence of each retriever and its current score."""

    record: ChunkRecord
    dense: float | None = None
    lexical: float | None = None
    fused: float = 0.0
    score: float = 0.0


@dataclass(frozen=True)
class FusionWeights:
    """How much each retriever's ranking counts in reciprocal rank fusion."""

    dense: float = 0.5
    sentences: float = 0.5
    lexical: float = 0.7
    k: int = 5

    def __post_init__(self) -> None:
        if min(self.dense, self.sentences, self.lexical) < 0:
            raise ValueError(f"fusion weights must not be negative, got {self}")
        if self.dense + self.sentences + self.lexical <= 0:
            raise ValueError(f"at least one fusion weight must be positive, got {self}")
        if self.k < 1:
            raise ValueError(f"fusion k must be at least 1, got {self.k}")

    @classmethod
    def from_settings(cls, settings: Settings) -> FusionWeights:
        """The weights as `CITEQA_WEIGHT_*` and `CITEQA_RRF_K` give them."""
        return cls(dense=settings.weight_dense, sentences=settings.weight_sentences,
                   lexical=settings.weight_lexical, k=settings.rrf_k)


def hybrid_search(
    collection: CollectionStore,
    *,
    query_vector: np.ndarray | Future[np.ndarray],
    query_tokens: list[str],
    depth: int,
    weights: FusionWeights,
    filters: Filters | None = None,
    window: TimeWindow | None = None,
    time_boost: float = 1.0,
    narrow: bool = False,
) -> list[Candidate]:
    """Chunks found by any retriever, best first by weighted reciprocal rank fusion.

    Three rankings are fused: chunk vectors (the passage as a whole), BM25 (rare names and
    numbers the model blurs) and sentences (the chunks those two found, ranked by their single
    closest sentence, which finds one precise statement inside a long passage). With a time
    `window` (the question said "this week", "in March"...), the fused score of a chunk whose
    document is dated inside it is multiplied by `time_boost`, and with `narrow`, when such a
    chunk then ranks first, chunks of documents dated outside the window are dropped. Undated
    documents are neither boosted nor dropped.

    `query_vector` may still be being computed (a Future): BM25 and its chunks' records are
    then read meanwhile, and the vector search's after it.
    """
    lexical_hits = (collection.lexical_search(query_tokens, depth, filters)
                    if weights.lexical or weights.sentences else [])
    records: dict[str, ChunkRecord] = {}
    if isinstance(query_vector, Future):
        if not query_vector.done():
            # Read while the vector is computed; when it is ready, one read serves both.
            records = collection.chunks([hit.chunk_id for hit in lexical_hits])
        query_vector = query_vector.result()
    # The chunk vectors are searched even at a zero weight: the sentence ranking reranks what
    # they and BM25 find.
    dense_hits = (collection.dense_search(query_vector, depth, filters)
                  if weights.dense or weights.sentences else [])
    later = collection.chunks(list(dict.fromkeys(
        [hit.chunk_id for hit in dense_hits if hit.chunk_id not in records]
        + ([] if records else [hit.chunk_id for hit in lexical_hits]))))
    if records and later:
        # A document replaced between the two reads is kept in its later version only: no
        # answer quotes two versions of one article.
        version = {record.document.id: version_of_chunk(chunk_id)
                   for chunk_id, record in later.items()}
        records = {chunk_id: record for chunk_id, record in records.items()
                   if version.get(record.document.id, version_of_chunk(chunk_id))
                   == version_of_chunk(chunk_id)}
    records.update(later)
    sentence_hits = best_sentences(records, query_vector, depth) if weights.sentences else []
    fused: dict[str, float] = {}
    dense_scores: dict[str, float] = {}
    for rank, dense_hit in enumerate(dense_hits if weights.dense else []):
        dense_scores[dense_hit.chunk_id] = dense_hit.score
        fused[dense_hit.chunk_id] = weights.dense / (weights.k + rank + 1)
    for rank, (chunk_id, score) in enumerate(sentence_hits):
        dense_scores[chunk_id] = max(score, dense_scores.get(chunk_id, -1.0))
        fused[chunk_id] = fused.get(chunk_id, 0.0) + weights.sentences / (weights.k + rank + 1)
    lexical_scores: dict[str, float] = {}
    for rank, lexical_hit in enumerate(lexical_hits if weights.lexical else []):
        lexical_scores[lexical_hit.chunk_id] = lexical_hit.score
        fused[lexical_hit.chunk_id] = (
            fused.get(lexical_hit.chunk_id, 0.0) + weights.lexical / (weights.k + rank + 1))
    latest = date_number(filters.as_of) if filters and filters.as_of else None
    if window is not None and time_boost != 1.0:
        for chunk_id, record in records.items():
            if chunk_id in fused and window.holds(_day(record)):
                fused[chunk_id] *= time_boost
    candidates = [
        Candidate(
            record=records[chunk_id],
            dense=dense_scores.get(chunk_id),
            lexical=lexical_scores.get(chunk_id),
            fused=score,
            score=score,
        )
        # Chunks the catalog does not know are orphans of an interrupted write: never shown.
        for chunk_id, score in fused.items()
        if chunk_id in records and not _after(records[chunk_id], latest)
    ]
    candidates.sort(key=lambda c: c.fused, reverse=True)
    if (narrow and window is not None and time_boost > 1.0 and candidates
            and window.holds(_day(candidates[0].record))):
        # The window leads: passages dated outside it are about another time.
        candidates = [c for c in candidates if _day(c.record) is None
                      or window.holds(_day(c.record))]
    return candidates


def best_sentences(records: dict[str, ChunkRecord], query_vector: np.ndarray, n: int
                   ) -> list[tuple[str, float]]:
    """The `n` chunks whose closest sentence is closest to the query, with that cosine."""
    query = np.asarray(query_vector, dtype=np.float32)
    best = {chunk_id: float(np.max(np.stack([s.vector for s in record.sentences]) @ query))
            for chunk_id, record in records.items() if record.sentences}
    return sorted(best.items(), key=lambda item: item[1], reverse=True)[:n]


def _day(record: ChunkRecord) -> date | None:
    """The date of a chunk's document, when it has one."""
    number = date_number(record.document.date)
    if number is None:
        return None
    return parse_day(f"{number // 10000:04d}-{number // 100 % 100:02d}-{number % 100:02d}")


def _after(record: ChunkRecord, latest: int | None) -> bool:
    # A document written after the vectors were searched is checked here too.
    number = date_number(record.document.date)
    return latest is not None and number is not None and number > latest
