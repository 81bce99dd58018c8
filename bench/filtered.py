"""Filtered questions against unfiltered ones, in process, on the 100k-chunk index.

    python -m bench.filtered                      # the 100k-chunk index of `make bench`
    python -m bench.filtered --data-dir DIR --questions 40 --rounds 3

The index is the synthetic corpus `bench.perf_build` builds for the serving benchmarks (build
it with `python -m bench.perf_build --chunks 100000 --data-dir bench/.data/perf/local-100000`);
it is only read. Filter values are picked from its catalog so each keeps a realistic share:
`date_to` and a `date_from`/`date_to` window at quantiles of the dated documents, the most
common source, and 20 document ids (seeded). Each question is asked once per filter in turn
(so a burst of load on the shared machine hits every filter alike), `rounds` times:

- **latency**: p50/p95 of `Citeqa.search` and `Citeqa.ask` (extractive), and the ratio of
  each filter's p50 to the unfiltered p50 of the same run;
- **stages**: p50 of each index's search alone (chunk vectors, BM25 with the catalog's
  filter) per filter, with the query vector already made;
- **recall**: the fused top 5 of the filtered retrieval against a reference that searches
  every index unfiltered and deep (1,000 chunk vectors, all of BM25), drops what the filter
  does not match and fuses what is left the same way (the sentence ranking reranks what both
  found, as in the real search): the share of the reference's top 5 the filtered search also
  returns.

A JSON summary goes to bench/results/filtered.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from bench.perf_build import BUILD_INFO, COLLECTION
from bench.perf_corpus import questions
from bench.run_info import commit, loadavg
from citeqa import Citeqa
from core.documents import ChunkRecord, Filters, date_number, doc_of_chunk
from core.settings import Settings
from index.lexical import LexicalHit
from index.store import CollectionStore
from index.vectors import DenseHit
from qa.question import prepare_question
from qa.retrieve import hybrid_search

HERE = Path(__file__).resolve().parent
DEFAULT_INDEX = HERE / ".data" / "perf" / "local-100000"
RESULTS = HERE / "results" / "filtered.json"
WARMUP = 5
TOP = 5
# How deep the reference searches each index unfiltered before filtering.
DEEP_CHUNKS = 1000
Hit = TypeVar("Hit", DenseHit, LexicalHit)

console = Console(stderr=True)


def pick_filters(catalog: Path, seed: int = 17) -> dict[str, Filters]:
    """The filters timed, with values read from the catalog (opened read-only)."""
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        dated = [int(row[0]) for row in db.execute(
            "SELECT date_num FROM documents WHERE collection = ? AND date_num IS NOT NULL "
            "ORDER BY date_num", (COLLECTION,))]
        source = db.execute(
            "SELECT source FROM documents WHERE collection = ? AND source IS NOT NULL "
            "AND source != '' GROUP BY source ORDER BY COUNT(*) DESC LIMIT 1",
            (COLLECTION,)).fetchone()[0]
        doc_ids = sorted(row[0] for row in db.execute(
            "SELECT doc_id FROM documents WHERE collection = ?", (COLLECTION,)))
    finally:
        db.close()

    def day(quantile: float) -> str:
        number = dated[int(quantile * (len(dated) - 1))]
        return f"{number // 10000:04d}-{number // 100 % 100:02d}-{number % 100:02d}"

    return {
        "none": Filters(),
        "date_to": Filters(date_to=day(0.7)),
        "window": Filters(date_from=day(0.3), date_to=day(0.8)),
        "source": Filters(sources=(source,)),
        "doc_ids": Filters(doc_ids=tuple(random.Random(seed).sample(doc_ids, 20))),
    }


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(_percentile(samples, 0.95), 2)}


def latency(app: Citeqa, asked: list[str], filters: dict[str, Filters], rounds: int
            ) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p95 of search and ask per filter, each question asked under every filter in turn."""
    samples: dict[str, dict[str, list[float]]] = {
        name: {"search": [], "ask": []} for name in filters}
    for question in asked[:WARMUP]:
        for kept in filters.values():
            app.search(question, collection=COLLECTION, filters=kept)
            app.ask(question, collection=COLLECTION, filters=kept)
    for _ in range(rounds):
        for question in asked:
            for name, kept in filters.items():
                samples[name]["search"].append(_timed(
                    partial(app.search, question, collection=COLLECTION, filters=kept)))
                samples[name]["ask"].append(_timed(
                    partial(app.ask, question, collection=COLLECTION, filters=kept)))
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in filters:
        out[name] = {}
        for path in ("search", "ask"):
            figures = _summary(samples[name][path])
            base = statistics.median(samples["none"][path])
            figures["ratio_p50"] = round(figures["p50_ms"] / base, 3)
            out[name][path] = figures
    return out


def stages(app: Citeqa, asked: list[str], filters: dict[str, Filters], rounds: int
           ) -> dict[str, dict[str, float]]:
    """p50 of each index's search alone per filter (the query already embedded)."""
    target = app.store.collection(COLLECTION)
    depth = app.options.candidates
    prepared = [prepare_question(q, max_chars=app.options.max_question_chars, idf=target.idf)
                for q in asked]
    vectors = [app.embedder.embed_query(q.text) for q in prepared]
    samples: dict[str, dict[str, list[float]]] = {
        name: {"dense": [], "lexical": []} for name in filters}
    for _ in range(rounds):
        for question, vector in zip(prepared, vectors, strict=True):
            for name, kept in filters.items():
                given = None if kept.empty else kept
                timings = samples[name]
                timings["dense"].append(_timed(
                    partial(target.dense_search, vector, depth, given)))
                timings["lexical"].append(_timed(
                    partial(target.lexical_search, question.tokens, depth, given)))
    return {name: {stage: round(statistics.median(values), 2)
                   for stage, values in timings.items()}
            for name, timings in samples.items()}


@dataclass
class PostFiltered:
    """A collection searched unfiltered and deep, then filtered: the recall reference."""

    target: CollectionStore
    allowed: set[str]
    short: bool = False
    """Whether a list came out shorter than asked: the deep search did not reach far enough."""

    def dense_search(self, vector: Any, k: int, filters: Filters | None = None
                     ) -> list[DenseHit]:
        """The first `k` matching chunks of a deep unfiltered chunk-vector search."""
        return self._keep(self.target.dense_search(vector, DEEP_CHUNKS), k)

    def lexical_search(self, tokens: list[str], k: int, filters: Filters | None = None
                       ) -> list[LexicalHit]:
        """The first `k` matching chunks of the full BM25 ranking."""
        # All of BM25's ranking: a shorter list is every chunk that holds a query word.
        hits = self.target.lexical_search(tokens, self.target.count_chunks())
        return [hit for hit in hits if doc_of_chunk(hit.chunk_id) in self.allowed][:k]

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """The chunks' records."""
        return self.target.chunks(chunk_ids)

    def _keep(self, hits: list[Hit], k: int) -> list[Hit]:
        kept = [hit for hit in hits if doc_of_chunk(hit.chunk_id) in self.allowed][:k]
        self.short = self.short or len(kept) < k
        return kept


def matching(catalog: Path, kept: Filters) -> set[str]:
    """The documents a filter keeps, by a query of its own (not the code under test)."""
    clauses: list[str] = ["collection = ?"]
    params: list[object] = [COLLECTION]
    if kept.sources:
        clauses.append(f"source IN ({','.join('?' * len(kept.sources))})")
        params.extend(kept.sources)
    if kept.doc_ids:
        clauses.append(f"doc_id IN ({','.join('?' * len(kept.doc_ids))})")
        params.extend(kept.doc_ids)
    if kept.date_from:
        clauses.append("date_num >= ?")
        params.append(date_number(kept.date_from))
    if kept.date_to:
        clauses.append("date_num <= ?")
        params.append(date_number(kept.date_to))
    db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute(
            f"SELECT doc_id FROM documents WHERE {' AND '.join(clauses)}", params)}
    finally:
        db.close()


def recall(app: Citeqa, catalog: Path, asked: list[str], filters: dict[str, Filters]
           ) -> dict[str, dict[str, Any]]:
    """Per filter: how much of the reference's fused top 5 the filtered retrieval returns."""
    target = app.store.collection(COLLECTION)
    depth, weights = app.options.candidates, app.options.fusion
    out: dict[str, dict[str, Any]] = {}
    for name, kept in filters.items():
        if kept.empty:
            continue
        allowed = matching(catalog, kept)
        shared = wanted = exact = compared = 0
        for text in asked:
            reference = PostFiltered(target, allowed)
            question = prepare_question(text, max_chars=app.options.max_question_chars,
                                        idf=target.idf)
            vector = app.embedder.embed_query(question.text)
            found = [c.record.chunk_id for c in hybrid_search(
                target, query_vector=vector, query_tokens=question.tokens, depth=depth,
                weights=weights, filters=kept)][:TOP]
            expected = [c.record.chunk_id for c in hybrid_search(
                reference, query_vector=vector,  # type: ignore[arg-type]
                query_tokens=question.tokens, depth=depth, weights=weights, filters=kept)][:TOP]
            if reference.short:
                # The deep unfiltered search held too few of the filter's chunks to compare.
                continue
            compared += 1
            shared += len(set(found) & set(expected))
            wanted += len(expected)
            exact += found == expected
        out[name] = {"documents": len(allowed), "questions": len(asked),
                     "comparable_questions": compared,
                     # None: no question's deep reference held enough of the filter's chunks
                     # (a short doc-id list, searched exactly over its own vectors anyway).
                     "top5_overlap": round(shared / wanted, 4) if wanted else None,
                     "same_top5_in_order": round(exact / compared, 4) if compared else None}
    return out


def _overlap(recalled: dict[str, Any] | None) -> str:
    if recalled is None:
        return "—"
    if recalled["top5_overlap"] is None:
        return "not comparable"
    return str(recalled["top5_overlap"])


def _describe(kept: Filters) -> dict[str, Any]:
    return {key: value for key, value in {
        "sources": list(kept.sources), "doc_ids": list(kept.doc_ids),
        "date_from": kept.date_from, "date_to": kept.date_to}.items() if value}


def main(argv: list[str] | None = None) -> None:
    """Time filtered and unfiltered questions on a built index; print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_INDEX,
                        help=f"A data folder built by bench.perf_build [{DEFAULT_INDEX}].")
    parser.add_argument("--questions", type=int, default=40, help="Questions timed [40].")
    parser.add_argument("--rounds", type=int, default=3,
                        help="Times each question is asked under each filter [3].")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON summary [{RESULTS}].")
    parser.add_argument("--no-recall", dest="recall", action="store_false",
                        help="Skip the recall check (timings only).")
    args = parser.parse_args(argv)
    if not (args.data_dir / BUILD_INFO).exists():
        raise SystemExit(f"{args.data_dir} holds no built index; build it with "
                         f"`python -m bench.perf_build --chunks 100000 --data-dir {args.data_dir}`")
    build = json.loads((args.data_dir / BUILD_INFO).read_text())
    catalog = args.data_dir / "catalog.sqlite3"
    filters = pick_filters(catalog)
    asked = questions()[:args.questions]
    app = Citeqa.build(Settings(data_dir=args.data_dir, collection=COLLECTION))
    app.store.collection(COLLECTION).warm_up()
    load_before = loadavg()
    console.print(f"stages: {len(asked)} questions x {len(filters)} filters")
    staged = stages(app, asked, filters, args.rounds)
    console.print(f"stages p50 ms: {staged}")
    console.print("latency: search and ask")
    timed = latency(app, asked, filters, args.rounds)
    console.print("recall")
    recalled = recall(app, catalog, asked, filters) if args.recall else {}
    summary = {
        "command": "python -m bench.filtered " + " ".join(argv or []),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(),
        "index_chunks": build.get("stored_chunks"), "index_documents": build.get("documents"),
        "questions": len(asked), "rounds": args.rounds,
        "loadavg_before": load_before, "loadavg_after": loadavg(),
        "filters": {name: _describe(kept) for name, kept in filters.items()},
        "latency": timed, "stages_p50_ms": staged, "recall": recalled,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    table = Table(title=f"filtered questions, {summary['index_chunks']:,} chunks, in process "
                        f"(load {load_before} -> {summary['loadavg_after']})")
    for column in ("filter", "docs", "search p50/p95 ms", "x none", "ask p50/p95 ms", "x none",
                   "dense/bm25 ms", "top5 overlap"):
        table.add_column(column, justify="right")
    for name in filters:
        search, ask, stage = timed[name]["search"], timed[name]["ask"], staged[name]
        table.add_row(
            name, str(recalled.get(name, {}).get("documents", "all")),
            f"{search['p50_ms']:.1f} / {search['p95_ms']:.1f}", f"{search['ratio_p50']:.2f}",
            f"{ask['p50_ms']:.1f} / {ask['p95_ms']:.1f}", f"{ask['ratio_p50']:.2f}",
            f"{stage['dense']:.1f} / {stage['lexical']:.1f}",
            _overlap(recalled.get(name)))
    Console().print(table)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
