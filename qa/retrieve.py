"""Stage 2 — retrieval: dense (Chroma) and lexical (BM25) search, fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.models import ChunkRecord, Filters
from index.store import CollectionStore


@dataclass
class Candidate:
    """A retrieved chunk with the evidence of each retriever and its current score."""

    record: ChunkRecord
    dense: float | None = None
    lexical: float | None = None
    fused: float = 0.0
    score: float = 0.0


def hybrid_search(
    collection: CollectionStore,
    *,
    query_vector: np.ndarray,
    query_tokens: list[str],
    depth: int,
    rrf_k: int,
    filters: Filters | None = None,
) -> list[Candidate]:
    """Chunks found by either retriever, best first by reciprocal rank fusion."""
    dense_hits = collection.dense_search(query_vector, depth, filters)
    lexical_hits = collection.lexical_search(query_tokens, depth, filters)
    fused: dict[str, float] = {}
    dense_scores: dict[str, float] = {}
    lexical_scores: dict[str, float] = {}
    for rank, dense_hit in enumerate(dense_hits):
        dense_scores[dense_hit.chunk_id] = dense_hit.score
        fused[dense_hit.chunk_id] = fused.get(dense_hit.chunk_id, 0.0) + 1.0 / (rrf_k + rank + 1)
    for rank, lexical_hit in enumerate(lexical_hits):
        lexical_scores[lexical_hit.chunk_id] = lexical_hit.score
        fused[lexical_hit.chunk_id] = (
            fused.get(lexical_hit.chunk_id, 0.0) + 1.0 / (rrf_k + rank + 1)
        )
    records = collection.chunks(list(fused))
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
        if chunk_id in records
    ]
    candidates.sort(key=lambda c: c.fused, reverse=True)
    return candidates
