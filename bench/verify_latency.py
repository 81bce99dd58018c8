"""How long `citeqa verify` takes per sentence on a large index, in process.

    python -m bench.verify_latency                      # the 100k-chunk index of `make bench`
    python -m bench.verify_latency --data-dir DIR --statements 300

The index is the synthetic corpus `bench.perf_build` builds for the serving benchmarks (every
SciFact and RealTimeQA document, then remixes of them; `make bench` builds it, or run
`python -m bench.perf_build --chunks 100000 --data-dir bench/.data/perf/local-100000`). The
statements are read from ../shared/eval at run time, check half only: RealTimeQA article
sentences as they are (their article is in the index) and SciFact claims (paraphrases of
abstracts, so mostly `unsupported`), interleaved; a different mix of verdicts takes different
paths through the checks.

Two figures per statement set:

- **one sentence per call**: `Citeqa.verify` on a text of one sentence, the way a tool checks
  a claim; includes embedding that one sentence. p50 and p95 over the statements.
- **one long text**: every statement joined into one text through `verify_stream`, the way a
  draft is checked; the wall time divided by the sentences (sentences are embedded in blocks).

A JSON summary goes to bench/results/verify-latency.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.near_miss import half
from bench.perf_build import BUILD_INFO, COLLECTION
from bench.perf_corpus import corpus_path, questions_path, read_jsonl
from bench.run_info import commit, loadavg
from citeqa import Citeqa
from core.settings import Settings
from core.text import sentence_spans

HERE = Path(__file__).resolve().parent
DEFAULT_INDEX = HERE / ".data" / "perf" / "local-100000"
RESULTS = HERE / "results" / "verify-latency.json"
# Sentences shorter than this are mostly headings and bylines, not claims.
MIN_CHARS = 40
MAX_CHARS = 300
WARMUP = 5

console = Console(stderr=True)


def statements(count: int, seed: int = 16) -> list[str]:
    """`count` check-half statements: RealTimeQA article sentences and SciFact claims."""
    rng = random.Random(seed)
    article_sentences: list[str] = []
    for record in read_jsonl(corpus_path("realtimeqa")):
        if half(str(record["id"])) != "check":
            continue
        text = str(record["text"])
        article_sentences.extend(
            " ".join(text[s:e].split()) for s, e in sentence_spans(text)
            if MIN_CHARS <= e - s <= MAX_CHARS)
    claims = [str(q["question"]) for q in read_jsonl(questions_path("scifact"))
              if half(str(q["id"])) == "check"]
    rng.shuffle(article_sentences)
    rng.shuffle(claims)
    mixed = [s for pair in zip(article_sentences, claims, strict=False) for s in pair]
    if len(mixed) < count:
        raise SystemExit(f"only {len(mixed)} statements available, asked for {count}")
    return mixed[:count]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(app: Citeqa, texts: list[str]) -> dict[str, Any]:
    """Per-sentence latency of one-sentence calls and of one long streamed text."""
    for text in texts[:WARMUP]:
        app.verify(text, collection=COLLECTION)
    single_ms: list[float] = []
    verdicts: Counter[str] = Counter()
    for text in texts:
        started = time.perf_counter()
        result = app.verify(text, collection=COLLECTION)
        single_ms.append((time.perf_counter() - started) * 1000)
        verdicts.update(s.verdict.value for s in result.sentences)
    long_text = " ".join(t if t.endswith((".", "!", "?")) else t + "." for t in texts)
    started = time.perf_counter()
    streamed = sum(1 for _ in app.verify_stream(long_text, collection=COLLECTION))
    stream_s = time.perf_counter() - started
    return {
        "statements": len(texts),
        "single_p50_ms": round(statistics.median(single_ms), 1),
        "single_p95_ms": round(_percentile(single_ms, 0.95), 1),
        "single_mean_ms": round(statistics.fmean(single_ms), 1),
        "verdicts": dict(verdicts),
        "long_text_sentences": streamed,
        "long_text_s": round(stream_s, 2),
        "long_text_ms_per_sentence": round(stream_s * 1000 / max(streamed, 1), 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Time `verify` on a built index and print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_INDEX,
                        help=f"A data folder built by bench.perf_build [{DEFAULT_INDEX}].")
    parser.add_argument("--statements", type=int, default=300,
                        help="Statements timed, half article sentences, half claims [300].")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON summary [{RESULTS}].")
    args = parser.parse_args(argv)
    info_file = args.data_dir / BUILD_INFO
    if not info_file.exists():
        raise SystemExit(f"{args.data_dir} holds no built index; build it with "
                         f"`python -m bench.perf_build --chunks 100000 --data-dir {args.data_dir}`")
    build = json.loads(info_file.read_text())
    app = Citeqa.build(Settings(data_dir=args.data_dir))
    load_before = loadavg()
    figures = measure(app, statements(args.statements))
    summary = {
        "command": "python -m bench.verify_latency " + " ".join(argv or []),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(),
        "index_chunks": build.get("stored_chunks"), "loadavg_before": load_before,
        "loadavg_after": loadavg(), **figures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    table = Table(title=f"verify latency, {summary['index_chunks']:,} chunks, in process")
    for column in ("statements", "1-sentence p50 ms", "p95 ms", "long text ms/sentence"):
        table.add_column(column, justify="right")
    table.add_row(str(figures["statements"]), str(figures["single_p50_ms"]),
                  str(figures["single_p95_ms"]), str(figures["long_text_ms_per_sentence"]))
    console.print(table)
    console.print(f"verdicts: {figures['verdicts']}; load {load_before} -> "
                  f"{summary['loadavg_after']}; written to {args.out}")


if __name__ == "__main__":
    main()
