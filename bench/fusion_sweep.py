"""Doc-level Recall@5 of dense, BM25 and reciprocal rank fusion variants on RealTimeQA.

Uses the tuning half (by id hash, as in calibrate_abstention.py) and a collection ingested with

    CITEQA_DATA_DIR=/tmp/evaldata citeqa ingest ../shared/eval/realtimeqa/corpus.jsonl.gz \
        --collection realtimeqa
    CITEQA_DATA_DIR=/tmp/evaldata python -m bench.fusion_sweep [N_QUESTIONS]
"""

from __future__ import annotations

import sys

from bench.calibrate_abstention import SHARED, half, read_jsonl
from index.settings import Settings
from qa.question import prepare_question
from server.services import Services

Ranked = list[str]


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    services = Services.build(Settings())
    collection = services.store.collection("realtimeqa")
    questions = [q for q in read_jsonl(SHARED / "realtimeqa" / "questions.jsonl.gz")
                 if half(q["id"]) == "tune"][:limit]
    runs: list[tuple[Ranked, Ranked, set[str]]] = []
    for q in questions:
        prepared = prepare_question(q["question"], max_chars=10_000)
        vector = services.embedder.embed_query(prepared.text)
        dense = [_doc(h.chunk_id) for h in collection.dense_search(vector, 30)]
        lexical = [_doc(h.chunk_id) for h in collection.lexical_search(prepared.tokens, 30)]
        runs.append((dense, lexical, set(q["gold_doc_ids"])))
    print(f"{len(runs)} tuning-half questions, Recall@5 (documents)")
    print(f"dense {_recall5([d for d, _, _ in runs], runs):.3f}")
    print(f"bm25  {_recall5([lex for _, lex, _ in runs], runs):.3f}")
    for lexical_weight in (1.0, 0.7, 0.5, 0.3):
        for k in (10, 60):
            fused = [_fuse(d, lex, lexical_weight, k) for d, lex, _ in runs]
            print(f"rrf k={k:<3} lexical weight {lexical_weight:.1f}  {_recall5(fused, runs):.3f}")


def _doc(chunk_id: str) -> str:
    return chunk_id.rsplit("::", 2)[0]


def _fuse(dense: Ranked, lexical: Ranked, lexical_weight: float, k: int) -> Ranked:
    scores: dict[str, float] = {}
    for weight, ranked in ((1.0, dense), (lexical_weight, lexical)):
        for rank, doc in enumerate(ranked):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank + 1)
    return sorted(scores, key=lambda doc: scores[doc], reverse=True)


def _recall5(ranked: list[Ranked], runs: list[tuple[Ranked, Ranked, set[str]]]) -> float:
    hits = [bool(set(r[:5]) & gold) for r, (_, _, gold) in zip(ranked, runs, strict=True)]
    return sum(hits) / len(hits)


if __name__ == "__main__":
    main()
