"""The PostgreSQL catalog against the SQLite one at benchmark size, over HTTP, alternating.

    python -m bench.catalog_http --sqlite-dir bench/.data/perf/local-100000 \\
        --pg-dir bench/.data/perf/pg-100000 --catalog-url postgresql://USER@HOST:PORT/DB

Both data folders hold the same synthetic corpus (`python -m bench.perf_build`, the second with
`CITEQA_CATALOG_URL` set), each with its own embedded Chroma. A `citeqa serve` is started on one,
warmed up and asked the questions one at a time, then stopped, then the other, for `--rounds`
rounds each: alternating, so that a machine that slows down or speeds up meanwhile affects
both alike. Prints p50/p95 per round and the median of the rounds' p50 as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import perf_load
from bench.perf_build import COLLECTION
from bench.perf_corpus import questions
from bench.perf_procs import bench_env, citeqa_server, tree_cpu_seconds
from bench.run_info import commit, loadavg


def one_round(data_dir: Path, catalog_url: str | None, asked: list[str], warmup: list[str],
              log: Path) -> dict[str, Any]:
    """Serve the folder, warm it up, ask the questions once each; latency and CPU."""
    extra = {"catalog_url": catalog_url} if catalog_url else {}
    env = bench_env(data_dir=str(data_dir), collection=COLLECTION, **extra)
    with citeqa_server(env, log) as server:
        perf_load.warm_up(server.url, warmup)
        cpu_before = tree_cpu_seconds(server.process.pid)
        result = perf_load.sequential(server.url, asked)
        result["server_cpu_ms_per_question"] = round(
            (tree_cpu_seconds(server.process.pid) - cpu_before) * 1000 / len(asked), 2)
    result["loadavg_after"] = loadavg()
    return result


def main() -> None:
    """Alternate the two catalogs and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-dir", type=Path, required=True)
    parser.add_argument("--pg-dir", type=Path, required=True)
    parser.add_argument("--catalog-url", required=True, help="The PostgreSQL catalog's URL.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each [3].")
    parser.add_argument("--questions", type=int, default=150, help="Questions a round [150].")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    every = questions()
    asked, warmup = every[:args.questions], every[-20:]
    record: dict[str, Any] = {"command": "python -m bench.catalog_http " + " ".join(
        arg if "postgresql://" not in arg else "postgresql://…" for arg in sys.argv[1:]),
        "commit": commit(), "loadavg_before": loadavg(), "rounds": []}
    for number in range(args.rounds):
        for name, folder, url in (("sqlite", args.sqlite_dir, None),
                                  ("postgresql", args.pg_dir, args.catalog_url)):
            result = one_round(folder, url, asked, warmup,
                               Path(f"/tmp/citeqa-catalog-http-{name}.log"))
            record["rounds"].append({"catalog": name, "round": number + 1, **result})
            print(f"{name} round {number + 1}: p50 {result['p50_ms']} ms, p95 "
                  f"{result['p95_ms']} ms, server CPU {result['server_cpu_ms_per_question']} "
                  "ms/question", flush=True)
    summary = {}
    for name in ("sqlite", "postgresql"):
        rounds = [r for r in record["rounds"] if r["catalog"] == name]
        summary[name] = {"p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
                         "p95_ms": round(statistics.median(r["p95_ms"] for r in rounds), 2)}
    summary["p50_ratio"] = round(summary["postgresql"]["p50_ms"] / summary["sqlite"]["p50_ms"], 3)
    record["summary"] = summary
    record["loadavg_after"] = loadavg()
    text = json.dumps(record, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
