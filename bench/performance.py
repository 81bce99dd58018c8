"""`make bench`: citeqa's performance benchmarks, printed as tables and written as JSON.

    python -m bench.performance [--quick] [--only ingest,query,langchain,concurrency,memory]
                                [--server-mode | --chroma-url URL] [--rebuild] ...

- ingest: citeqa's ingestion (chunks/s) of the first N documents of each evaluation set,
  against raw `SentenceTransformer.encode` of the same texts in the same run (bench.perf_ingest).
- query: p50/p95 of `POST /v1/ask` (extractive) against a real `citeqa serve` at each index size
  (synthetic corpora from the evaluation sets, bench.perf_corpus), after a warm-up.
- langchain: `Chroma.from_documents` + `HuggingFaceEmbeddings` and `similarity_search(k=5)` on
  the ingest benchmark's chunks, against citeqa's in-process ask and search.
- concurrency: N clients asking in a loop for S seconds against `citeqa serve`: throughput,
  p50/p95, errors.
- memory: peak RSS (with children) of `citeqa serve` under that load, and of building the
  largest index.

Indexes for the serving benchmarks are built once (bench.perf_build, as a subprocess) into
`bench/.data/perf/` and reused by later runs (`--rebuild` builds them again). With
`--server-mode` the query and load benchmarks also run against a real `chroma run` server (our
own, on a free port) through `CITEQA_CHROMA_URL`; `--chroma-url` names an existing one instead.
Results: `bench/results/performance.json` (`performance-quick.json` with `--quick`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from bench import perf_load
from bench.perf_build import BUILD_INFO, COLLECTION, cache_path
from bench.perf_corpus import SETS, questions
from bench.perf_ingest import IngestCorpus, ingest_vs_raw, langchain_vs_citeqa
from bench.perf_procs import PeakRss, Server, bench_env, chroma_server, citeqa_server
from index.embedding import resolve_model_location
from index.settings import Settings

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "perf"
RESULTS = HERE / "results"
BENCHMARKS = ("ingest", "query", "langchain", "concurrency", "memory")
BUILD_MEMORY = "build-memory.json"

console = Console(stderr=True)


def chroma_url_supported() -> bool:
    """Whether this citeqa reads `CITEQA_CHROMA_URL` (a `chroma_url` setting)."""
    return "chroma_url" in Settings.model_fields


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {
        "cpu_count": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "loadavg_at_start": _loadavg(),
    }


# Index building ----------------------------------------------------------------------------


def ensure_index(size: int, data_dir: Path, env: dict[str, str], *, rebuild: bool,
                 verify: bool, log_dir: Path, chroma: Server | None = None) -> dict[str, Any]:
    """A citeqa data folder holding the synthetic corpus of `size` chunks: build info + memory.

    A complete earlier build is reused unless `verify` (then the build tops it up, which is
    quick when nothing is missing, e.g. for a Chroma server whose contents may have changed).
    """
    info_file, memory_file = data_dir / BUILD_INFO, data_dir / BUILD_MEMORY
    if rebuild and data_dir.exists() and chroma is None:
        shutil.rmtree(data_dir)
    if info_file.exists() and not verify:
        info = json.loads(info_file.read_text())
        if info.get("stored_chunks", 0) >= info.get("chunks", 1) and info["target_chunks"] == size:
            memory = json.loads(memory_file.read_text()) if memory_file.exists() else {}
            return {"build": info, "memory": memory, "cached": True}
    data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]building[/] the {size:,}-chunk index in {data_dir} "
                  "(cached for later runs)")
    log = log_dir / f"build-{data_dir.name}.log"
    command = [sys.executable, "-m", "bench.perf_build", "--chunks", str(size),
               "--data-dir", str(data_dir), "--cache", str(cache_path(DATA, "default"))]
    with log.open("ab") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err,
                                   cwd=HERE.parent)
        chroma_peak = PeakRss(chroma.process.pid) if chroma else nullcontext()
        with PeakRss(process.pid) as peak, chroma_peak:
            out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"index build failed ({process.returncode}); see {log}")
    info = json.loads(out.decode().strip().splitlines()[-1])
    memory = json.loads(memory_file.read_text()) if memory_file.exists() else {}
    if info["added_chunks"]:
        memory = {"ingest_peak_rss_mb": peak.peak_mb, "added_chunks": info["added_chunks"],
                  "vector_cache_mb": info["vector_cache_mb"], "date": info["date"]}
        if isinstance(chroma_peak, PeakRss):
            memory["chroma_server_peak_rss_mb"] = chroma_peak.peak_mb
        memory_file.write_text(json.dumps(memory, indent=1) + "\n")
    return {"build": info, "memory": memory, "cached": False}


# Serving -----------------------------------------------------------------------------------


@contextmanager
def chroma_for(mode: str, size: int, args: argparse.Namespace, log_dir: Path
               ) -> Iterator[tuple[Server | None, str | None, Path]]:
    """For a mode, the Chroma server to use (ours or the given URL) and the data folder."""
    if mode == "local":
        yield None, None, DATA / f"local-{size}"
        return
    if args.chroma_url:
        digest = hashlib.sha1(args.chroma_url.encode()).hexdigest()[:8]
        yield None, args.chroma_url, DATA / f"external-{digest}-{size}"
        return
    folder = DATA / f"server-{size}"
    if args.rebuild and folder.exists():
        shutil.rmtree(folder)
    (folder / "chroma-server").mkdir(parents=True, exist_ok=True)
    with chroma_server(folder / "chroma-server", log_dir / f"chroma-{size}.log") as server:
        yield server, server.url, folder / "citeqa"


def serve_benchmarks(mode: str, size: int, args: argparse.Namespace, asked: list[str],
                     warmup: list[str], log_dir: Path, *, do_query: bool, do_load: bool
                     ) -> dict[str, Any]:
    """Build (or reuse) the index of one size, serve it, and run the HTTP benchmarks on it."""
    result: dict[str, Any] = {"mode": mode, "size": size}
    with chroma_for(mode, size, args, log_dir) as (chroma, url, data_dir):
        extra = {"chroma_url": url} if url else {}
        env = bench_env(data_dir=str(data_dir), collection=COLLECTION, **extra)
        built = ensure_index(size, data_dir, env, rebuild=args.rebuild, verify=mode != "local",
                             log_dir=log_dir, chroma=chroma)
        result.update(index=built["build"], index_cached=built["cached"],
                      build_memory=built["memory"])
        started = time.perf_counter()
        with citeqa_server(env, log_dir / f"serve-{mode}-{size}.log") as server:
            result["startup_s"] = round(time.perf_counter() - started, 1)
            with PeakRss(server.process.pid) as rss:
                perf_load.warm_up(server.url, warmup)
                time.sleep(0.5)
            result["serve_rss_after_warmup_mb"] = rss.last_mb
            if do_query:
                console.print(f"[bold]query[/] {mode} {size:,} chunks: {len(asked)} questions")
                result["loadavg_before"] = _loadavg()
                result["query"] = perf_load.sequential(server.url, asked)
            if do_load:
                console.print(f"[bold]load[/] {mode} {size:,} chunks: {args.clients} clients "
                              f"for {args.duration:g} s")
                chroma_rss = PeakRss(chroma.process.pid) if chroma else nullcontext()
                with PeakRss(server.process.pid) as rss, chroma_rss:
                    result["concurrency"] = perf_load.load(
                        server.url, asked, clients=args.clients, seconds=args.duration)
                result["concurrency"]["loadavg_after"] = _loadavg()
                result["serve_peak_rss_under_load_mb"] = rss.peak_mb
                if isinstance(chroma_rss, PeakRss):
                    result["chroma_server_peak_rss_under_load_mb"] = chroma_rss.peak_mb
    return result


# Reporting ---------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_tables(results: dict[str, Any]) -> None:
    """The results as tables on stdout."""
    out = Console()
    if results.get("ingest"):
        table = Table("set", "docs", "chunks", "citeqa texts", "citeqa chunks/s",
                      "of which model s", "raw same texts chunks/s", "ours/raw",
                      "raw chunk texts chunks/s", "ours/raw chunks",
                      title="Ingestion (citeqa vs raw SentenceTransformer.encode, same run)")
        for row in results["ingest"]:
            ours = row["citeqa"]
            table.add_row(row["set"], _fmt(row["documents"]), _fmt(row["chunks"]),
                          _fmt(ours["texts"]), _fmt(ours["chunks_per_s"]),
                          f"{_fmt(ours['model_seconds'])} of {_fmt(ours['seconds'])}",
                          _fmt(row["raw_same_texts"]["chunks_per_s"]),
                          _fmt(row["ratio_vs_raw_same_texts"], 3),
                          _fmt(row["raw_chunk_texts"]["chunks_per_s"]),
                          _fmt(row["ratio_vs_raw_chunk_texts"], 3))
        out.print(table)
    if results.get("langchain"):
        table = Table("set", "chunks", "LC ingest chunks/s", "citeqa chunks/s", "citeqa/LC",
                      "LC search p50/p95", "citeqa ask p50/p95", "citeqa search p50/p95",
                      "ask/LC p50", title="LangChain tutorial vs citeqa (in-process, ms)")
        for row in results["langchain"]:
            lc, ours, ratios = row["langchain"], row["citeqa"], row["ratios"]
            table.add_row(
                row["set"], _fmt(row["chunks"]), _fmt(lc["chunks_per_s"]),
                _fmt(ours["chunks_per_s"]),
                _fmt(ratios["ingest_chunks_per_s_citeqa_over_langchain"], 3),
                f"{_fmt(lc['query']['p50_ms'])} / {_fmt(lc['query']['p95_ms'])}",
                f"{_fmt(ours['ask']['p50_ms'])} / {_fmt(ours['ask']['p95_ms'])}",
                f"{_fmt(ours['search_top5']['p50_ms'])} / {_fmt(ours['search_top5']['p95_ms'])}",
                _fmt(ratios["ask_p50_citeqa_over_langchain"], 2))
        out.print(table)
    served = [row for row in results.get("serving", []) if "query" in row]
    if served:
        table = Table("mode", "chunks", "n", "p50", "p95", "p99", "errors", "server total p50",
                      "embed", "retrieve", "answer",
                      title="POST /v1/ask over HTTP, one at a time (ms)")
        for row in served:
            query, stages = row["query"], row["query"]["server_stage_p50_ms"]
            table.add_row(row["mode"], _fmt(row["index"]["stored_chunks"]), _fmt(query["n"]),
                          _fmt(query["p50_ms"]), _fmt(query["p95_ms"]), _fmt(query["p99_ms"]),
                          _fmt(query["errors"]), _fmt(stages["total"]), _fmt(stages["embed"]),
                          _fmt(stages["retrieve"]), _fmt(stages["answer"]))
        out.print(table)
    loaded = [row for row in results.get("serving", []) if "concurrency" in row]
    if loaded:
        table = Table("mode", "chunks", "clients", "seconds", "requests", "req/s", "p50 ms",
                      "p95 ms", "errors", "serve RSS idle→peak MB",
                      title="Concurrent clients against citeqa serve")
        for row in loaded:
            load = row["concurrency"]
            table.add_row(row["mode"], _fmt(row["index"]["stored_chunks"]), _fmt(load["clients"]),
                          _fmt(load["elapsed_s"]), _fmt(load["requests"]),
                          _fmt(load["throughput_rps"], 2), _fmt(load["p50_ms"]),
                          _fmt(load["p95_ms"]), _fmt(load["errors"]),
                          f"{_fmt(row['serve_rss_after_warmup_mb'])} → "
                          f"{_fmt(row['serve_peak_rss_under_load_mb'])}")
        out.print(table)
    if results.get("memory"):
        table = Table("what", "chunks", "peak RSS MB", "note", title="Peak memory (with children)")
        for row in results["memory"]:
            table.add_row(row["what"], _fmt(row["chunks"]), _fmt(row["peak_rss_mb"]),
                          row.get("note", ""))
        out.print(table)
    for note in results.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")


def memory_rows(serving: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The memory table: index builds and servers under load."""
    rows: list[dict[str, Any]] = []
    for row in serving:
        chunks = row["index"]["stored_chunks"]
        build = row.get("build_memory") or {}
        if "ingest_peak_rss_mb" in build:
            rows.append({
                "what": f"ingest ({row['mode']})", "chunks": build["added_chunks"],
                "peak_rss_mb": build["ingest_peak_rss_mb"],
                "note": f"measured {build['date'][:10]}"
                        f"{' (cached build)' if row['index_cached'] else ''}; includes "
                        f"{build['vector_cache_mb']} MB of vector cache"})
            if "chroma_server_peak_rss_mb" in build:
                rows.append({"what": "chroma server during ingest", "chunks": chunks,
                             "peak_rss_mb": build["chroma_server_peak_rss_mb"]})
        if "serve_peak_rss_under_load_mb" in row:
            clients = row["concurrency"]["clients"]
            rows.append({"what": f"citeqa serve under load ({row['mode']})", "chunks": chunks,
                         "peak_rss_mb": row["serve_peak_rss_under_load_mb"],
                         "note": f"{clients} clients; after warm-up "
                                 f"{row['serve_rss_after_warmup_mb']} MB"})
        if "chroma_server_peak_rss_under_load_mb" in row:
            rows.append({"what": "chroma server under load", "chunks": chunks,
                         "peak_rss_mb": row["chroma_server_peak_rss_under_load_mb"]})
    return rows


# Entry point -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; `--quick` changes the defaults of the sizes, not explicit values."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="Small sizes for a check: 2k chunks, 100 docs, 10 s of load.")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"Comma-separated benchmarks to run, of {','.join(BENCHMARKS)}.")
    parser.add_argument("--sizes", default=None,
                        help="Index sizes in chunks for query latency [10000,100000; quick 2000].")
    parser.add_argument("--load-size", type=int, default=None,
                        help="Index size for the load and memory benchmarks [the largest].")
    parser.add_argument("--ingest-docs", type=int, default=None,
                        help="Documents of each set for ingest and LangChain [1000; quick 100].")
    parser.add_argument("--questions", type=int, default=None,
                        help="Questions timed per size, after the warm-up [300; quick 60].")
    parser.add_argument("--warmup", type=int, default=None,
                        help="Warm-up questions [20; quick 10].")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients [50].")
    parser.add_argument("--duration", type=float, default=None,
                        help="Seconds of concurrent load [60; quick 10].")
    parser.add_argument("--server-mode", action="store_true",
                        help="Also run query and load against our own `chroma run` server.")
    parser.add_argument("--chroma-url", default=None,
                        help="Also run query and load against this Chroma server.")
    parser.add_argument("--no-local", action="store_true",
                        help="Skip the local (embedded Chroma) serving runs.")
    parser.add_argument("--rebuild", action="store_true",
                        help="Build the serving indexes again instead of reusing them.")
    parser.add_argument("--out", type=Path, default=None,
                        help="Results file [bench/results/performance.json; quick: "
                             "performance-quick.json].")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
                  else [2000] if quick else [10_000, 100_000])
    args.load_size = args.load_size or max(args.sizes)
    if args.load_size not in args.sizes:
        args.sizes.append(args.load_size)
    args.ingest_docs = args.ingest_docs or (100 if quick else 1000)
    args.questions = args.questions or (60 if quick else 300)
    args.warmup = args.warmup if args.warmup is not None else (10 if quick else 20)
    args.duration = args.duration or (10.0 if quick else 60.0)
    args.out = args.out or RESULTS / ("performance-quick.json" if quick else "performance.json")
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the chosen benchmarks, print the tables, write the JSON."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    started = time.perf_counter()
    settings = Settings()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.performance", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "model": {"name": settings.embedding_model,
                  "location": resolve_model_location(settings.embedding_model),
                  "batch_size": settings.embedding_batch_size},
        "settings": {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
                     "embed_title": settings.embed_title, "top_k": settings.top_k,
                     "candidates": settings.candidates},
        "options": {"benchmarks": args.only, "quick": args.quick, "sizes": args.sizes,
                    "load_size": args.load_size, "ingest_docs_per_set": args.ingest_docs,
                    "questions": args.questions, "warmup": args.warmup,
                    "clients": args.clients, "duration_s": args.duration,
                    "server_mode": bool(args.server_mode or args.chroma_url)},
        "notes": [],
    }
    DATA.mkdir(parents=True, exist_ok=True)
    log_dir = DATA / "logs"
    log_dir.mkdir(exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="citeqa-perf-") as tmp:
        work = Path(tmp)
        corpora: list[IngestCorpus] = []
        if "ingest" in args.only or "langchain" in args.only:
            results["ingest"] = []
            for name in SETS:
                console.print(f"[bold]ingest[/] {name}: first {args.ingest_docs} documents")
                corpus = ingest_vs_raw(name, args.ingest_docs, work)
                corpus.result["loadavg_after"] = _loadavg()
                corpora.append(corpus)
                results["ingest"].append(corpus.result)
        if "langchain" in args.only:
            results["langchain"] = []
            for corpus in corpora:
                console.print(f"[bold]langchain[/] {corpus.name}")
                row = langchain_vs_citeqa(corpus, work, min(args.questions, 100), args.warmup)
                row["loadavg_after"] = _loadavg()
                results["langchain"].append(row)

    do_query = "query" in args.only
    do_load = "concurrency" in args.only or "memory" in args.only
    if do_query or do_load:
        asked_all = questions()
        warmup = asked_all[-args.warmup:] if args.warmup else []
        asked = asked_all[:args.questions]
        modes = [] if args.no_local else ["local"]
        if args.server_mode or args.chroma_url:
            if chroma_url_supported():
                modes.append("server")
            else:
                message = ("server mode skipped: this citeqa has no CITEQA_CHROMA_URL setting "
                           "(no chroma_url in index/settings.py) yet")
                console.print(f"[yellow]{message}[/]")
                results["notes"].append(message)
        results["serving"] = []
        for mode in modes:
            for size in sorted(args.sizes):
                query_here = do_query
                load_here = do_load and size == args.load_size
                if query_here or load_here:
                    results["serving"].append(serve_benchmarks(
                        mode, size, args, asked, warmup, log_dir, do_query=query_here,
                        do_load=load_here))
        if "memory" in args.only:
            results["memory"] = memory_rows(results["serving"])

    results["machine"]["loadavg_at_end"] = _loadavg()
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print_tables(results)
    console.print(f"[dim]{results['seconds']:.0f} s in all; written to {args.out}[/]")


if __name__ == "__main__":
    main()
