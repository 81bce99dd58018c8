"""Build (or top up) a citeqa index of a synthetic corpus of N chunks, for the serving benchmarks.

Run by `bench.performance` as a subprocess, so that its peak memory can be measured on its own:

    python -m bench.perf_build --chunks 100000 --data-dir bench/.data/perf/local-100000

The settings come from the environment like everywhere else (`CITEQA_*`, e.g.
`CITEQA_CHROMA_URL` for a Chroma server). Documents go through `index.ingest.ingest_documents`,
citeqa's own ingestion, with one difference: the embedder computes each distinct text once and
keeps the vectors in a cache file, because the synthetic corpus repeats its sentences (see
`bench.perf_corpus`) and the same text always gets the same vector. The index is what a plain
ingest would build; the build time measures citeqa's ingestion minus most of the model. How
fast ingestion is with the model is `bench.performance`'s ingest benchmark. A JSON summary is
printed on the last line of stdout and written to `build.json` in the data folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.perf_corpus import synthetic_documents
from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_documents

COLLECTION = "perf"
BUILD_INFO = "build.json"
# New vectors after which the cache is written, so an interrupted build keeps most of its work.
SAVE_EVERY = 10_000


class CachedEmbedder:
    """An `Embedder` that runs the model once per distinct text, with vectors kept on disk."""

    def __init__(self, inner: SentenceTransformerEmbedder, path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.path = path
        self.hits = 0
        self.misses = 0
        self.model_seconds = 0.0
        self._rows: dict[str, int] = {}
        self._vectors: list[np.ndarray] = []
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                keys, vectors = stored["keys"], stored["vectors"]
            if vectors.shape[1] == self.dimension:
                self._rows = {str(key): row for row, key in enumerate(keys)}
                self._vectors = list(vectors)
        self._saved = len(self._vectors)

    def __len__(self) -> int:
        return len(self._vectors)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, one row per text; the model only sees texts not seen before."""
        keys = [hashlib.sha1(text.encode("utf-8")).hexdigest() for text in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._rows:
                missing.setdefault(key, text)
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if missing:
            started = time.perf_counter()
            computed = self.inner.embed_documents(list(missing.values()))
            self.model_seconds += time.perf_counter() - started
            for key, vector in zip(missing, computed, strict=True):
                self._rows[key] = len(self._vectors)
                self._vectors.append(vector)
            if len(self._vectors) - self._saved >= SAVE_EVERY:
                self.save()
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[self._rows[key]] for key in keys]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one question (never cached)."""
        return self.inner.embed_query(text)

    def save(self) -> None:
        """Write the cache if it grew (atomically, so an interrupted run keeps the old one)."""
        if len(self._vectors) == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self._rows, key=self._rows.__getitem__))
        partial = self.path.with_name(self.path.stem + ".partial.npz")
        np.savez(partial, keys=keys, vectors=np.stack(self._vectors).astype(np.float32))
        partial.replace(self.path)
        self._saved = len(self._vectors)


def cache_path(root: Path, model: str) -> Path:
    """Where the vector cache of a model lives."""
    return root / f"vectors-{hashlib.sha1(model.encode()).hexdigest()[:12]}.npz"


def build(target_chunks: int, settings: Settings, cache: Path) -> dict[str, Any]:
    """Ingest the synthetic corpus of `target_chunks` chunks; what was done, with timings."""
    started = time.perf_counter()
    documents, chunks = synthetic_documents(target_chunks, settings)
    corpus_seconds = time.perf_counter() - started
    inner = SentenceTransformerEmbedder(settings.embedding_model,
                                        batch_size=settings.embedding_batch_size)
    embedder = CachedEmbedder(inner, cache)
    cached_before = len(embedder)
    services = Citeqa.build(settings, embedder=embedder)
    cpu_started = time.process_time()
    report = ingest_documents(documents, store=services.store, collection=COLLECTION,
                              embedder=embedder, settings=settings)
    target = services.store.collection(COLLECTION)
    # The lexical index's rebuild a large ingestion starts in the background: part of the
    # build, not of the first benchmark that opens the index.
    target.settle()
    cpu_seconds = time.process_time() - cpu_started
    embedder.save()
    return {
        "target_chunks": target_chunks,
        "documents": len(documents),
        "chunks": chunks,
        "stored_chunks": target.count_chunks(),
        "stored_documents": target.count_documents(),
        "added_documents": len(report.added) + len(report.updated),
        "added_chunks": report.chunks,
        "skipped": len(report.skipped),
        "ingest_seconds": round(report.seconds, 2),
        "ingest_cpu_seconds": round(cpu_seconds, 2),
        "corpus_seconds": round(corpus_seconds, 2),
        "model_seconds": round(embedder.model_seconds, 2),
        "texts_embedded_by_model": embedder.misses,
        "texts_from_cache": embedder.hits,
        "vector_cache_rows": {"before": cached_before, "after": len(embedder)},
        "vector_cache_mb": round(len(embedder) * embedder.dimension * 4 / 2**20, 1),
        "chunks_per_second_without_model": (
            round(report.chunks / max(report.seconds - embedder.model_seconds, 1e-9), 1)
            if report.chunks else None),
        "chroma_url": getattr(settings, "chroma_url", None),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    """Build the index named on the command line and print its summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, required=True, help="Chunks to reach.")
    parser.add_argument("--data-dir", type=Path, required=True, help="citeqa data folder.")
    parser.add_argument("--cache", type=Path, required=True, help="Vector cache file (.npz).")
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)
    info = build(args.chunks, settings, args.cache)
    (args.data_dir / BUILD_INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
