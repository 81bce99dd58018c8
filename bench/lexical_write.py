"""The lexical part of a one-document write at a large collection: the full BM25 rebuild every
write used to cost, against the catch-up of the incremental index.

    python -m bench.lexical_write --catalog bench/.data/perf/local-100000/catalog.sqlite3

The catalog is copied to a temporary folder first (and migrated there), so the benchmark's data
folder is never written. Each round writes one new document of three chunks to the catalog and
times what the lexical index then does: `rebuild` as before (every chunk's tokens read from
the catalog, bm25s indexing them, the files saved), `incremental` as now (the changed documents
read, a delta built, saved and applied). The vectors of the write are not part of either.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np

from core.documents import Chunk, Document, PreparedDocument
from core.text import chunk_tokens, search_tokens
from index.catalog_sqlite import SqliteCatalog
from index.lexical import LexicalIndex

TEXTS = [
    "The night ferry to the outer islands was cancelled after the harbour master saw the fog.",
    "Fishermen tied their boats twice over and carried the nets up to the sheds by the pier.",
    "By morning the wind had dropped, and the first crossing left the quay a little after six.",
]


def _one_document(number: int) -> PreparedDocument:
    doc_id = f"bench-lexical-write-{number}"
    text = " ".join(TEXTS)
    chunks, start = [], 0
    for index, chunk_text in enumerate(TEXTS):
        chunks.append(Chunk(doc_id, index, start, start + len(chunk_text), chunk_text))
        start += len(chunk_text) + 1
    document = Document.stored(id=doc_id, text=text, title=f"Ferry {number}", url=None,
                               date=None, source=None, metadata={})
    return PreparedDocument(document, chunks, np.zeros((len(chunks), 2)),
                            [chunk_tokens(document.title, chunk.text) for chunk in chunks],
                            [], np.zeros((0, 2)))


def _write(catalog: SqliteCatalog, collection: str, number: int) -> None:
    prepared = _one_document(number)
    ids = [chunk.chunk_id(prepared.document.content_hash) for chunk in prepared.chunks]
    catalog.write_documents(collection, [(prepared, ids)])


def _rebuild(catalog: SqliteCatalog, collection: str, folder: Path) -> bm25s.BM25:
    """What every write cost before: the old index's full rebuild and save."""
    rows = catalog.lexical_rows(collection)
    bm25 = bm25s.BM25()
    bm25.index([row.tokens for row in rows], show_progress=False)
    shutil.rmtree(folder, ignore_errors=True)
    bm25.save(str(folder), show_progress=False)
    return bm25


QUESTIONS = [
    "When was the ferry to the islands cancelled?", "Who won the election in Brazil?",
    "What does vitamin D do to bone density?", "How many people were killed in the storm?",
    "Which company bought the social network?", "Does smoking increase the risk of cancer?",
    "What did the central bank decide about interest rates?", "Where did the earthquake hit?",
]


def _query_ms(search: Callable[[list[str]], object], rounds: int = 20) -> float:
    """Median milliseconds of one search over the questions' tokens."""
    times = []
    for _ in range(rounds):
        for question in QUESTIONS:
            tokens = search_tokens(question)
            started = time.perf_counter()
            search(tokens)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _bm25s_top(bm25: bm25s.BM25, tokens: list[str], k: int = 60) -> np.ndarray:
    known = [t for t in tokens if t in bm25.vocab_dict]
    scores = bm25.get_scores(known)
    return np.argpartition(-scores, k)[:k]


def main() -> None:
    """Time both over a copy of the catalog; print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--collection", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lexical-write-") as temporary:
        work = Path(temporary)
        shutil.copy(args.catalog, work / "catalog.sqlite3")
        catalog = SqliteCatalog(work / "catalog.sqlite3")
        collection = args.collection or catalog.collections()[0].name
        print(f"{catalog.count_chunks(collection)} chunks in {collection!r}")

        rebuild = []
        for number in range(args.rounds):
            _write(catalog, collection, number)
            started = time.perf_counter()
            bm25 = _rebuild(catalog, collection, work / "bm25s")
            rebuild.append(time.perf_counter() - started)

        index = LexicalIndex(catalog, collection, work / "lexical")
        started = time.perf_counter()
        index.refresh()
        print(f"first build of the incremental index: {time.perf_counter() - started:.2f} s")
        incremental = []
        for number in range(args.rounds, 2 * args.rounds):
            _write(catalog, collection, number)
            started = time.perf_counter()
            index.refresh()
            incremental.append(time.perf_counter() - started)
        assert index.search(search_tokens("ferry"), 1), "the written documents are searchable"
        started = time.perf_counter()
        LexicalIndex(catalog, collection, work / "lexical").refresh()
        print(f"a new process loading base + deltas: {time.perf_counter() - started:.2f} s")
        print(f"query p50: bm25s {_query_ms(lambda t: _bm25s_top(bm25, t)):.2f} ms, "
              f"incremental {_query_ms(lambda t: index.search(t, 60)):.2f} ms")
        print(f"rebuild per write: median {statistics.median(rebuild) * 1000:.0f} ms "
              f"({', '.join(f'{s * 1000:.0f}' for s in rebuild)})")
        print(f"incremental per write: median {statistics.median(incremental) * 1000:.1f} ms "
              f"({', '.join(f'{s * 1000:.1f}' for s in incremental)})")


if __name__ == "__main__":
    main()
