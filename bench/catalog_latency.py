"""The cost of the PostgreSQL catalog per question: the same questions, in process, over the same
articles, with the SQLite catalog and with the PostgreSQL one, alternating.

    python -m bench.catalog_latency --catalog-url postgresql://USER@HOST:PORT/DB

The URL names a server and a database to connect to first; each PostgreSQL round creates a new
database beside it (the user needs CREATEDB) and leaves it there. The articles are the bundled
samples (`samples/articles`), so this isolates the catalog's round trips on a small index, not
a 100k-chunk one: at 100k chunks a question costs more elsewhere, and the catalog's share less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_paths
from index.store import Store

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "articles"
QUESTIONS = ["Who co-leads the lab?", "When does the tram line open?",
             "What did the council decide?", "Who won the award?",
             "How much did the project cost?", "Where is the new museum?"]


def new_database(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    name = f"citeqa_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def timed_round(settings: Settings, embedder: SentenceTransformerEmbedder, repeats: int
                ) -> list[float]:
    """Ingest the samples, warm up, then the milliseconds of each question asked."""
    store = Store.from_settings(settings)
    try:
        ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                     settings=settings)
        assistant = Citeqa.build(settings, embedder=embedder, store=store).assistant
        for question in QUESTIONS:
            assistant.ask(question)
        times = []
        for _ in range(repeats):
            for question in QUESTIONS:
                start = time.perf_counter()
                assistant.ask(question)
                times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        store.close()


def main() -> None:
    """Alternate SQLite and PostgreSQL rounds; print p50 and p95 of each catalog."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder(encoder="onnx",
                                           cache_dir=Path(tempfile.mkdtemp()) / "models")
    results: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    for _ in range(args.rounds):
        for mode in results:
            catalog = {"catalog_url": new_database(args.catalog_url)} if mode == "postgres" else {}
            settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data", **catalog)
            results[mode] += timed_round(settings, embedder, args.repeats)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for mode, times in results.items():
        times.sort()
        print(f"{mode}: p50 {statistics.median(times):.1f} ms, "
              f"p95 {times[int(len(times) * 0.95)]:.1f} ms, {len(times)} questions")


if __name__ == "__main__":
    main()
