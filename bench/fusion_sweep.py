"""Retrieval ablation: each retriever alone and weighted RRF variants, on both eval sets.

Document-level Recall@5 and nDCG@10 on the tuning and check halves (by id hash, as in
near_miss.py), over the collections `make eval` builds:

    make eval && python -m bench.fusion_sweep       # writes bench/results/fusion.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rich.progress import track

from bench.near_miss import half, read_jsonl
from citeqa import Citeqa
from core.documents import doc_of_chunk
from core.settings import Settings
from qa.question import prepare_question
from qa.retrieve import best_sentences

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "eval"

Ranked = list[str]
OUT = HERE / "results" / "fusion.json"
# (name, chunk-vector weight, sentence weight (the chunk-vector and BM25 candidates ranked by their
# best sentence, as `qa.retrieve.hybrid_search` does), BM25 weight, k). The run that compared
# this sentence ranking with a sentence-vector HNSW index (removed on 2026-11-30) is
# bench/results/fusion-sentence-index.json.
VARIANTS: list[tuple[str, float, float, float, int]] = [
    ("chunk vectors", 1.0, 0.0, 0.0, 60), ("best sentence of both", 0.0, 1.0, 0.0, 60),
    ("bm25", 0.0, 0.0, 1.0, 60), ("rrf chunk+bm25 k=60", 1.0, 0.0, 1.0, 60),
    ("rrf all three k=60", 1.0, 1.0, 1.0, 60), ("rrf all three k=5", 1.0, 1.0, 1.0, 5),
    ("rrf 0.5/0.5/0.7 k=5 (default)", 0.5, 0.5, 0.7, 5), ("rrf 1/0/0.5 k=5", 1.0, 0.0, 0.5, 5),
    ("rrf 0.5/0.5/1 k=5", 0.5, 0.5, 1.0, 5), ("rrf 0.5/0.5/0.7 k=2", 0.5, 0.5, 0.7, 2),
]


def main() -> None:
    """Run every variant on both sets and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    args = parser.parse_args()
    services = Citeqa.build(Settings(data_dir=args.data_dir))
    sets = {"scifact": read_jsonl(SHARED / "scifact" / "questions.jsonl"),
            "realtimeqa": read_jsonl(SHARED / "realtimeqa" / "questions.jsonl.gz")}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, questions in sets.items():
        collection = services.store.collection(f"eval-{name}")
        runs = []
        for q in track(questions, description=name):
            prepared = prepare_question(q["question"], max_chars=10_000)
            vector = services.embedder.embed_query(prepared.text)
            dense = [hit.chunk_id for hit in collection.dense_search(vector, 30)]
            lexical = [hit.chunk_id for hit in collection.lexical_search(prepared.tokens, 30)]
            sentences = best_sentences(collection.chunks(list(dict.fromkeys(dense + lexical))),
                                       vector, 30)
            ranked = [_documents(dense), _documents([chunk_id for chunk_id, _ in sentences]),
                      _documents(lexical)]
            runs.append((half(q["id"]), ranked, set(q["gold_doc_ids"])))
        for variant, *weights, k in VARIANTS:
            row = results.setdefault(variant, {})
            for part in ("tune", "check"):
                chosen = [(_fuse(ranked, weights, int(k)), gold)
                          for h, ranked, gold in runs if h == part]
                row[f"{name} {part} R@5"] = _mean(
                    [bool(set(r[:5]) & gold) for r, gold in chosen])
                row[f"{name} {part} nDCG@10"] = _mean([_ndcg(r, gold) for r, gold in chosen])
    columns = list(next(iter(results.values())))
    print(f"{'variant':32} " + " ".join(f"{c:>22}" for c in columns))
    for variant, row in results.items():
        print(f"{variant:32} " + " ".join(f"{row[c]:22.3f}" for c in columns))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")


def _documents(chunk_ids: list[str]) -> Ranked:
    ranked: Ranked = []
    for chunk_id in chunk_ids:
        doc_id = doc_of_chunk(chunk_id)
        if doc_id not in ranked:
            ranked.append(doc_id)
    return ranked


def _fuse(ranked: list[Ranked], weights: list[float], k: int) -> Ranked:
    scores: dict[str, float] = {}
    for weight, docs in zip(weights, ranked, strict=True):
        for rank, doc in enumerate(docs):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank + 1)
    return sorted(scores, key=lambda doc: scores[doc], reverse=True)


def _ndcg(ranked: Ranked, gold: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:10]) if doc in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    return dcg / ideal if ideal else 0.0


def _mean(values: list[float] | list[bool]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


if __name__ == "__main__":
    main()
