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
- write: one-document writes to each served index, uploaded over HTTP until a search finds them
  (BM25 included), then deleted (bench.perf_write).

Indexes for the serving benchmarks are built once (bench.perf_build, as a subprocess) into
`bench/.data/perf/` and reused by later runs (`--rebuild` builds them again). With
`--server-mode` the query and load benchmarks also run against a real `chroma run` server (our
own, on a free port) through `CITEQA_CHROMA_URL`; `--chroma-url` names an existing one instead
(its index is only ever topped up, never rebuilt).
The benchmarks choose the data folder, collection, Chroma URL, API keys and LLM themselves;
other `CITEQA_*` settings (model, chunk size...) apply. The cached indexes are not rebuilt when
those change: use `--rebuild`. Results: `bench/results/performance.json`
(`performance-quick.json` with `--quick`); `--report FILE` prints an earlier file's tables.
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
from bench.perf_procs import (
    PeakRss,
    Server,
    bench_env,
    chroma_server,
    citeqa_server,
    clear_own_settings,
    tree_cpu_seconds,
)
from bench.perf_write import one_document_writes
from bench.run_info import commit, loadavg
from core.settings import Settings
from index.embedding import resolve_model_location

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "perf"
RESULTS = HERE / "results"
BENCHMARKS = ("ingest", "query", "langchain", "concurrency", "memory", "write")
# One-document writes timed per served index (bench.perf_write).
WRITE_ROUNDS = 10
BUILD_MEMORY = "build-memory.json"
# Questions timed in the in-process LangChain comparison (three calls each).
LANGCHAIN_QUESTIONS = 100

console = Console(stderr=True)


def chroma_url_supported() -> bool:
    """Whether this citeqa reads `CITEQA_CHROMA_URL` (a `chroma_url` setting)."""
    return "chroma_url" in Settings.model_fields


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {
        "cpu_count": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "loadavg_at_start": loadavg(), "commit": commit(),
    }


# Index building ----------------------------------------------------------------------------


def ensure_index(size: int, data_dir: Path, env: dict[str, str], *, rebuild: bool,
                 verify: bool, log_dir: Path, chroma: Server | None = None) -> dict[str, Any]:
    """A citeqa data folder holding the synthetic corpus of `size` chunks: build info + memory.

    A complete earlier build is reused unless `verify` (then the build tops it up, which is
    quick when nothing is missing, e.g. for a Chroma server whose contents may have changed).
    """
    info_file, memory_file = data_dir / BUILD_INFO, data_dir / BUILD_MEMORY
    if rebuild and data_dir.exists():
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
               "--data-dir", str(data_dir),
               "--cache", str(cache_path(DATA, Settings().embedding_model))]
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
                  "texts_embedded_by_model": info["texts_embedded_by_model"],
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
                     warmup: list[str], log_dir: Path, *, do_query: bool, do_load: bool,
                     do_write: bool = False) -> dict[str, Any]:
    """Build (or reuse) the index of one size, serve it, and run the HTTP benchmarks on it."""
    result: dict[str, Any] = {"mode": mode, "size": size}
    with chroma_for(mode, size, args, log_dir) as (chroma, url, data_dir):
        extra = {"chroma_url": url} if url else {}
        env = bench_env(data_dir=str(data_dir), collection=COLLECTION, **extra)
        # Our own Chroma server's folder was emptied by chroma_for; an external server's
        # collection belongs to its data folder, so that one is only ever topped up.
        built = ensure_index(size, data_dir, env, rebuild=args.rebuild and mode == "local",
                             verify=mode != "local", log_dir=log_dir, chroma=chroma)
        result.update(index=built["build"], index_cached=built["cached"],
                      build_memory=built["memory"])
        started = time.perf_counter()
        with citeqa_server(env, log_dir / f"serve-{mode}-{size}.log",
                           workers=args.workers) as server:
            result["startup_s"] = round(time.perf_counter() - started, 1)
            with PeakRss(server.process.pid) as rss:
                perf_load.warm_up(server.url, warmup)
                time.sleep(0.5)
            result["serve_rss_after_warmup_mb"] = rss.last_mb
            if do_query:
                console.print(f"[bold]query[/] {mode} {size:,} chunks: {len(asked)} questions")
                result["loadavg_before"] = loadavg()
                # The server's CPU per question, one at a time: what bounds throughput when
                # every core is busy (cores / this), the yardstick for the load's throughput.
                cpu_before = tree_cpu_seconds(server.process.pid)
                result["query"] = perf_load.sequential(server.url, asked)
                result["server_cpu_ms_per_question"] = round(
                    (tree_cpu_seconds(server.process.pid) - cpu_before) * 1000 / len(asked), 2)
            if do_load:
                console.print(f"[bold]load[/] {mode} {size:,} chunks: {args.clients} clients "
                              f"for {args.duration:g} s")
                chroma_rss = PeakRss(chroma.process.pid) if chroma else nullcontext()
                cpu_before = tree_cpu_seconds(server.process.pid)
                client_cpu_before = time.process_time()
                with PeakRss(server.process.pid) as rss, chroma_rss:
                    result["concurrency"] = perf_load.load(
                        server.url, asked, clients=args.clients, seconds=args.duration)
                load = result["concurrency"]
                load["server_cpu_s"] = round(tree_cpu_seconds(server.process.pid) - cpu_before, 1)
                load["client_cpu_s"] = round(time.process_time() - client_cpu_before, 1)
                per_question = result.get("server_cpu_ms_per_question")
                if per_question:
                    # Every core on the server, each question costing what it cost alone.
                    bound = (os.cpu_count() or 1) * 1000 / per_question
                    load["cpu_bound_req_s"] = round(bound, 1)
                    load["share_of_cpu_bound"] = round(load["throughput_rps"] / bound, 3)
                result["concurrency"]["loadavg_after"] = loadavg()
                result["serve_peak_rss_under_load_mb"] = rss.peak_mb
                if isinstance(chroma_rss, PeakRss):
                    result["chroma_server_peak_rss_under_load_mb"] = chroma_rss.peak_mb
            if do_write:
                console.print(f"[bold]write[/] {mode} {size:,} chunks: {WRITE_ROUNDS} documents")
                with PeakRss(server.process.pid) as rss:
                    result["write"] = one_document_writes(server.url, WRITE_ROUNDS)
                result["write"]["serve_peak_rss_mb"] = rss.peak_mb
    return result


# Reporting ---------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(title: str, heads: list[str], rows: list[tuple[str, list[str]]]) -> Table:
    """A table with metrics down and runs across (fits a terminal however many metrics)."""
    table = Table("", *heads, title=title, title_justify="left")
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def _pair(a: Any, b: Any) -> str:
    return f"{_fmt(a)} / {_fmt(b)}"


def _served_heads(rows: list[dict[str, Any]]) -> list[str]:
    """Column heads of the serving tables: mode and index size of each row."""
    return [f"{r['mode']} {r['index']['stored_chunks']:,}" for r in rows]


def print_tables(results: dict[str, Any]) -> None:
    """The results as tables on stdout."""
    out = Console()
    if results.get("ingest"):
        runs = results["ingest"]
        out.print(_table(
            "Ingestion: citeqa vs raw SentenceTransformer.encode in the same run",
            [run["set"] for run in runs], [
                ("documents / chunks", [_pair(r["documents"], r["chunks"]) for r in runs]),
                ("texts citeqa encodes (sentences+titles)",
                 [_fmt(r["citeqa"]["texts"]) for r in runs]),
                ("citeqa ingest s (model s)", [
                    f"{_fmt(r['citeqa']['seconds'])} ({_fmt(r['citeqa']['model_seconds'])})"
                    for r in runs]),
                ("citeqa chunks/s", [_fmt(r["citeqa"]["chunks_per_s"]) for r in runs]),
                ("raw encode, same texts: chunks/s",
                 [_fmt(r["raw_same_texts"]["chunks_per_s"]) for r in runs]),
                ("  ratio ours / raw", [_fmt(r["ratio_vs_raw_same_texts"], 3) for r in runs]),
                ("citeqa's encoder alone, same texts: chunks/s", [
                    f"{_fmt(r['encoder_same_texts']['chunks_per_s'])} "
                    f"({r['citeqa']['encoder']})" if "encoder_same_texts" in r else "—"
                    for r in runs]),
                ("  ratio ours / encoder alone",
                 [_fmt(r.get("ratio_vs_encoder_same_texts"), 3) for r in runs]),
                ("raw encode, chunk texts: chunks/s",
                 [_fmt(r["raw_chunk_texts"]["chunks_per_s"]) for r in runs]),
                ("  ratio ours / raw chunks",
                 [_fmt(r["ratio_vs_raw_chunk_texts"], 3) for r in runs]),
                ("CPU s: citeqa / raw same / raw chunks", [
                    f"{_fmt(r['citeqa']['cpu_seconds'])} / "
                    f"{_fmt(r['raw_same_texts']['cpu_seconds'])} / "
                    f"{_fmt(r['raw_chunk_texts']['cpu_seconds'])}" for r in runs]),
            ]))
    if results.get("langchain"):
        runs = results["langchain"]
        out.print(_table(
            "LangChain tutorial vs citeqa, same chunks, in-process (latency in ms)",
            [run["set"] for run in runs], [
                ("chunks", [_fmt(r["chunks"]) for r in runs]),
                ("LangChain ingest chunks/s", [_fmt(r["langchain"]["chunks_per_s"]) for r in runs]),
                ("citeqa ingest chunks/s", [_fmt(r["citeqa"]["chunks_per_s"]) for r in runs]),
                ("  ratio citeqa / LangChain", [
                    _fmt(r["ratios"]["ingest_chunks_per_s_citeqa_over_langchain"], 3)
                    for r in runs]),
                ("LangChain similarity_search p50 / p95", [
                    _pair(r["langchain"]["query"]["p50_ms"], r["langchain"]["query"]["p95_ms"])
                    for r in runs]),
                ("citeqa ask p50 / p95", [
                    _pair(r["citeqa"]["ask"]["p50_ms"], r["citeqa"]["ask"]["p95_ms"])
                    for r in runs]),
                ("citeqa search (top 5) p50 / p95", [
                    _pair(r["citeqa"]["search_top5"]["p50_ms"],
                          r["citeqa"]["search_top5"]["p95_ms"]) for r in runs]),
                ("  ratio ask / LangChain p50",
                 [_fmt(r["ratios"]["ask_p50_citeqa_over_langchain"], 2) for r in runs]),
                ("  ratio search / LangChain p50",
                 [_fmt(r["ratios"]["search_p50_citeqa_over_langchain"], 2) for r in runs]),
            ]))
    served = [row for row in results.get("serving", []) if "query" in row]
    if served:
        out.print(_table(
            "POST /v1/ask over HTTP against citeqa serve, one at a time (ms)",
            _served_heads(served), [
                ("questions / errors", [_pair(r["query"]["n"], r["query"]["errors"])
                                        for r in served]),
                ("p50 / p95", [_pair(r["query"]["p50_ms"], r["query"]["p95_ms"])
                               for r in served]),
                ("p99 / max", [_pair(r["query"]["p99_ms"], r["query"]["max_ms"])
                               for r in served]),
                *[(f"server {stage} p50", [_fmt(r["query"]["server_stage_p50_ms"][stage])
                                           for r in served])
                  for stage in ("total", "embed", "retrieve", "answer")],
            ]))
    written = [row for row in results.get("serving", []) if "write" in row]
    if written:
        out.print(_table(
            "One-document writes over HTTP: upload, until a search finds it (BM25 included)",
            _served_heads(written), [
                ("rounds / never found", [_pair(r["write"]["rounds"], r["write"]["never_visible"])
                                          for r in written]),
                ("upload answered p50 / max s", [
                    _pair(r["write"].get("write_p50_s"), r["write"].get("write_max_s"))
                    for r in written]),
                ("found by search p50 / max s", [
                    _pair(r["write"].get("visible_p50_s"), r["write"].get("visible_max_s"))
                    for r in written]),
                ("delete p50 / max s", [
                    _pair(r["write"].get("delete_p50_s"), r["write"].get("delete_max_s"))
                    for r in written]),
                ("server peak RSS MB", [_fmt(r["write"].get("serve_peak_rss_mb"))
                                        for r in written]),
            ]))
    loaded = [row for row in results.get("serving", []) if "concurrency" in row]
    if loaded:
        out.print(_table(
            "Concurrent clients against citeqa serve",
            _served_heads(loaded), [
                ("clients / seconds", [_pair(r["concurrency"]["clients"],
                                             r["concurrency"]["elapsed_s"]) for r in loaded]),
                ("requests / errors", [_pair(r["concurrency"]["requests"],
                                             r["concurrency"]["errors"]) for r in loaded]),
                ("throughput req/s", [_fmt(r["concurrency"]["throughput_rps"], 2)
                                      for r in loaded]),
                ("p50 / p95 ms", [_pair(r["concurrency"]["p50_ms"], r["concurrency"]["p95_ms"])
                                  for r in loaded]),
                ("server CPU ms per question, alone", [_fmt(r.get("server_cpu_ms_per_question"))
                                                       for r in loaded]),
                ("CPU-bound req/s (cores / that) / share reached", [
                    _pair(r["concurrency"].get("cpu_bound_req_s"),
                          r["concurrency"].get("share_of_cpu_bound")) for r in loaded]),
                ("server / client CPU s under load", [
                    _pair(r["concurrency"].get("server_cpu_s"),
                          r["concurrency"].get("client_cpu_s")) for r in loaded]),
            ]))
    if results.get("memory"):
        table = Table("what", "chunks", "peak RSS MB", "note",
                      title="Peak memory (RSS with children)", title_justify="left")
        for row in results["memory"]:
            table.add_row(row["what"], _fmt(row["chunks"]), _fmt(row["peak_rss_mb"]),
                          row.get("note", ""))
        out.print(table)
    for note in results.get("notes", []):
        out.print(f"[yellow]note:[/] {note}")
    machine_info = results["machine"]
    out.print(f"[dim]{results['date']}, {machine_info['cpu_count']} CPUs, load average "
              f"{machine_info['loadavg_at_start'][0]} at start, "
              f"{machine_info.get('loadavg_at_end', ['?'])[0]} at end; "
              f"{results.get('seconds', 0):.0f} s in all[/]")


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
                        f"{' (cached build)' if row['index_cached'] else ''}; "
                        f"{_fmt(build.get('texts_embedded_by_model'))} texts through the "
                        f"model, {build['vector_cache_mb']} MB of vector cache"})
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
    parser.add_argument("--workers", type=int, default=1,
                        help="`citeqa serve --workers` (several need a Chroma server) [1].")
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
    parser.add_argument("--report", type=Path, default=None,
                        help="Only print the tables of an earlier results file.")
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
    if args.report:
        print_tables(json.loads(args.report.read_text(encoding="utf-8")))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    clear_own_settings()
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
                    "langchain_questions": min(args.questions, LANGCHAIN_QUESTIONS),
                    "clients": args.clients, "duration_s": args.duration,
                    "workers": args.workers,
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
                corpus.result["loadavg_after"] = loadavg()
                corpora.append(corpus)
                results["ingest"].append(corpus.result)
        if "langchain" in args.only:
            results["langchain"] = []
            for corpus in corpora:
                console.print(f"[bold]langchain[/] {corpus.name}")
                row = langchain_vs_citeqa(corpus, work, min(args.questions, LANGCHAIN_QUESTIONS),
                                          args.warmup)
                row["loadavg_after"] = loadavg()
                results["langchain"].append(row)

    do_query = "query" in args.only
    do_load = "concurrency" in args.only or "memory" in args.only
    do_write = "write" in args.only
    if do_query or do_load or do_write:
        asked_all = questions()
        warmup = asked_all[-args.warmup:] if args.warmup else []
        asked = asked_all[:args.questions]
        modes = [] if args.no_local else ["local"]
        if args.server_mode or args.chroma_url:
            if chroma_url_supported():
                modes.append("server")
            else:
                message = ("server mode skipped: this citeqa has no CITEQA_CHROMA_URL setting "
                           "(no chroma_url in core/settings.py) yet")
                console.print(f"[yellow]{message}[/]")
                results["notes"].append(message)
        results["serving"] = []
        for mode in modes:
            for size in sorted(args.sizes):
                query_here = do_query
                load_here = do_load and size == args.load_size
                if query_here or load_here or do_write:
                    results["serving"].append(serve_benchmarks(
                        mode, size, args, asked, warmup, log_dir, do_query=query_here,
                        do_load=load_here, do_write=do_write))
        if "memory" in args.only:
            results["memory"] = memory_rows(results["serving"])

    results["machine"]["loadavg_at_end"] = loadavg()
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print_tables(results)
    console.print(f"[dim]{results['seconds']:.0f} s in all; written to {args.out}[/]")


if __name__ == "__main__":
    main()
