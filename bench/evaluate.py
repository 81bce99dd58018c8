"""`make eval`: citeqa eval on SciFact, RealTimeQA and the seed set, printed as one table.

Run as `python -m bench.evaluate [--limit N]`. The indexes are kept in `bench/.data`, so a
second run only asks the questions. Results go to `bench/results/eval.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from index.settings import Settings
from qa.evaluation import EvalReport, run_evaluation
from server.services import Services

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SEED_NEWS_PASSAGES = 300

COLUMNS = [
    ("recall@1", "R@1"), ("recall@5", "R@5"), ("recall@10", "R@10"), ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"), ("answer_containment", "contain"), ("answer_f1", "F1"),
    ("citation_accuracy", "cite acc"), ("citation_precision", "cite prec"),
    ("abstention_precision", "abst P"), ("abstention_recall", "abst R"),
    ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"),
]


def seed_corpus(folder: Path) -> Path:
    """The seed article plus the first news passages of RealTimeQA, as one ingest JSONL."""
    path = folder / "seed-corpus.jsonl"
    seed = SHARED / "seeds" / "damo-ustc-joint-lab.txt"
    text = seed.read_text(encoding="utf-8")
    lines = [json.dumps({"id": seed.name, "title": text.strip().splitlines()[0], "text": text})]
    with gzip.open(SHARED / "eval" / "realtimeqa" / "corpus.jsonl.gz", "rt",
                   encoding="utf-8") as news:
        for _, line in zip(range(SEED_NEWS_PASSAGES), news, strict=False):
            lines.append(line.strip())
    content = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")
    return path


def seed_correct(report: EvalReport) -> int:
    """Seed questions answered right: the gold answer, cited from the seed; or an abstention."""
    correct = 0
    for result in report.results:
        if not result.answerable:
            correct += result.abstained
        else:
            correct += bool(result.contains_answer and result.first_citation_correct)
    return correct


def _tracker(progress: Progress, description: str) -> Callable[[int, int], None]:
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update


def main() -> None:
    """Run the three sets and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="Ask only the first N questions of each set.")
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data",
                        help="Where the evaluation indexes live (kept between runs).")
    parser.add_argument("--sets", nargs="+", default=["scifact", "realtimeqa", "seed"],
                        choices=["scifact", "realtimeqa", "seed"], help="Which sets to run.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eval.json")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    sets = [
        ("scifact", SHARED / "eval" / "scifact" / "corpus.jsonl.gz",
         SHARED / "eval" / "scifact" / "questions.jsonl"),
        ("realtimeqa", SHARED / "eval" / "realtimeqa" / "corpus.jsonl.gz",
         SHARED / "eval" / "realtimeqa" / "questions.jsonl.gz"),
        ("seed", seed_corpus(args.data_dir), HERE / "data" / "seed_questions.jsonl"),
    ]
    console = Console(stderr=True)
    services = Services.build(Settings(data_dir=args.data_dir))
    reports: dict[str, dict[str, Any]] = {}
    for name, corpus, questions in [s for s in sets if s[0] in args.sets]:
        started = time.perf_counter()
        with Progress(TextColumn(f"[bold]{name}[/] {{task.description}}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            report = run_evaluation(
                services, corpus=corpus, questions=questions, collection=f"eval-{name}",
                limit=args.limit,
                ingest_progress=_tracker(progress, "ingesting"),
                progress=_tracker(progress, "asking"),
            )
        console.print(f"[dim]{name}: {report.ingest.summary()}; whole set "
                      f"{time.perf_counter() - started:.1f} s[/]")
        summary = dict(report.summary)
        if name == "seed":
            summary["seed_correct"] = seed_correct(report)
        reports[name] = {"summary": summary, "ingest": report.ingest.to_dict(),
                         "setup": report.setup}
    # Metrics down, sets across: fits a terminal however many metrics there are.
    table = Table("metric", *reports, title="citeqa eval (make eval)")
    summaries = [report["summary"] for report in reports.values()]
    table.add_row("questions", *(str(summary["questions"]) for summary in summaries))
    for key, label in COLUMNS:
        table.add_row(label, *("—" if summary.get(key) is None else f"{summary[key]:.3f}"
                               for summary in summaries))
    table.add_row("seed correct", *(f"{summary['seed_correct']}/{summary['questions']}"
                                    if "seed_correct" in summary else "—"
                                    for summary in summaries))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=1) + "\n", encoding="utf-8")
    console.print(f"[dim]written to {args.out}[/]")


if __name__ == "__main__":
    main()
