"""`make eval`: answer quality on the dev sets' check halves, with ablations and calibration.

Run as `python -m bench.evaluate [--limit N] [--no-ablations]`. Prints three tables:

1. **the sets** (check halves where anything was fitted on the other half): SciFact (all;
   retrieval only), RealTimeQA plain and as of each question's date, near misses built from
   RealTimeQA (bench/near_miss.py) scored beside RealTimeQA's answerable questions, our own
   reading-comprehension sets (bench/data/rc*), and the seed set (the seed article among 300
   news passages);
2. **ablations**: one row per change of issue 12, each the full pipeline with one part
   swapped (a fitted model with some weights set to zero is that model without those
   features, not a refit);
3. **calibration**: support bins against the share answered rightly, with abstention off;

and, after the first, the table of `citeqa verify` (bench/verify_eval.py, `make eval-verify`).

The indexes are kept in `bench/.data`, so a second run only asks the questions. Results go to
`bench/results/eval.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.near_miss import dev_sets, half
from bench.verify_eval import evaluate_verification, verify_table
from citeqa import Citeqa
from citeqa.evaluate import run_evaluation
from core.settings import Settings
from qa.abstain import FittedSupport, SupportModel
from qa.draft import Answerer
from qa.evaluation import (
    EvalReport,
    QuestionResult,
    auroc,
    calibration,
    summarize,
)
from qa.extract import ExtractiveAnswerer
from qa.linear import LinearModel

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SEED_NEWS_PASSAGES = 300
RTQA = SHARED / "eval" / "realtimeqa"

# Features that read the question's names, numbers, focus and asked kind of fact.
CONSTRAINT_FEATURES = (
    "names_in_sentence", "names_in_context", "names_in_document", "quantities_in_sentence",
    "quantities_in_context", "contradicted", "typed", "focus_in_sentence", "focus_in_context",
    "focus_in_document", "missing_number", "missing_date", "missing_person", "missing_place",
    "missing_organisation", "missing_name", "has_names", "has_quantities", "typed_question",
    "has_focus",
)

ROWS = [
    ("answered", "answered (answerable)"), ("recall@1", "R@1"), ("recall@5", "R@5"),
    ("ndcg@10", "nDCG@10"), ("answer_containment", "contain"),
    ("citation_accuracy", "cite acc"), ("citation_precision", "cite prec"),
    ("abstention_recall", "abstained (unanswerable)"), ("abstention_precision", "abst P"),
    ("support_auroc_answerable", "AUROC answerable/not"),
    ("latency_p50_ms", "p50 ms"), ("latency_p95_ms", "p95 ms"),
]


@dataclass(frozen=True)
class Variant:
    """One way to run the pipeline: the shipped parts, or one of them swapped."""

    name: str
    answerer: Answerer | None = None
    support: SupportModel | None = None
    as_of_question_date: bool = False


def seed_corpus(folder: Path) -> Path:
    """The seed article plus the first news passages of RealTimeQA, as one ingest JSONL."""
    path = folder / "seed-corpus.jsonl"
    seed = SHARED / "seeds" / "damo-ustc-joint-lab.txt"
    text = seed.read_text(encoding="utf-8")
    lines = [json.dumps({"id": seed.name, "title": text.strip().splitlines()[0], "text": text})]
    with gzip.open(RTQA / "corpus.jsonl.gz", "rt", encoding="utf-8") as news:
        for _, line in zip(range(SEED_NEWS_PASSAGES), news, strict=False):
            lines.append(line.strip())
    return _write_if_changed(path, lines)


def seed_correct(report: EvalReport) -> int:
    """Seed questions answered right: the gold answer, cited from the seed; or an abstention."""
    correct = 0
    for result in report.results:
        if not result.answerable:
            correct += result.abstained
        else:
            correct += bool(result.contains_answer and result.first_citation_correct)
    return correct


def _write_if_changed(path: Path, lines: Sequence[str]) -> Path:
    content = "".join(f"{line}\n" for line in lines)
    if not path.exists() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")
    return path


def _jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    return _write_if_changed(path, [json.dumps(r, ensure_ascii=False) for r in records])


@dataclass(frozen=True)
class Run:
    """One question file asked of one collection."""

    corpus: Path
    questions: Path
    collection: str


def dev_runs(folder: Path) -> dict[str, list[Run]]:
    """The check-half question files (written to `folder`, never to the repository)."""
    sets = dev_sets()

    def check(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [q for q in records if half(q["id"]) == "check"]

    rtqa_corpus = RTQA / "corpus.jsonl.gz"
    rtqa_check = Run(rtqa_corpus, _jsonl(folder / "realtimeqa-check.jsonl",
                                         check(sets.realtimeqa_questions)), "eval-realtimeqa")
    return {
        "realtimeqa": [rtqa_check],
        "near-miss": [
            Run(rtqa_corpus, _jsonl(folder / "near-miss-swaps-check.jsonl", check(sets.swaps)),
                "eval-realtimeqa"),
            Run(_jsonl(folder / "nearmiss-half-corpus.jsonl", sets.kept_passages),
                _jsonl(folder / "near-miss-removed-check.jsonl", check(sets.removed)),
                "nearmiss-realtimeqa-half"),
        ],
        "own": [Run(_jsonl(folder / "own-corpus.jsonl", sets.own_corpus),
                    _jsonl(folder / "own-check.jsonl", check(sets.own_questions)), "eval-own")],
    }


@contextmanager
def swapped(services: Citeqa, variant: Variant) -> Iterator[None]:
    """The services' assistant with the variant's parts, put back afterwards."""
    assistant = services.assistant
    answerer, support = assistant.answerer, assistant.support
    assistant.answerer = variant.answerer or answerer
    assistant.support = variant.support or support
    try:
        yield
    finally:
        assistant.answerer, assistant.support = answerer, support


def ask_all(services: Citeqa, runs: Sequence[Run], *, label: str, console: Console,
            limit: int | None, as_of_question_date: bool = False) -> list[QuestionResult]:
    """Every run's results, in order, with a progress bar."""
    results: list[QuestionResult] = []
    for run in runs:
        with Progress(TextColumn(f"[bold]{label}[/] {{task.description}}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as progress:
            report = run_evaluation(
                services, corpus=run.corpus, questions=run.questions,
                collection=run.collection, limit=limit,
                as_of_question_date=as_of_question_date,
                ingest_progress=_tracker(progress, "ingesting"),
                progress=_tracker(progress, "asking"))
        results += report.results
    return results


def figures(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """The summary, plus the share of answerable questions answered."""
    summary: dict[str, Any] = dict(summarize(results))
    answerable = [r for r in results if r.answerable and r.error is None]
    summary["answered"] = (round(sum(not r.abstained for r in answerable) / len(answerable), 4)
                           if answerable else None)
    return summary


def _zeroed(model: LinearModel, features: Sequence[str]) -> LinearModel:
    weights = np.where(np.isin(model.features, list(features)), 0.0, model.weights)
    return LinearModel(model.features, weights, model.mean, model.scale, model.bias,
                       model.meta)


def _never_abstains(model: LinearModel) -> FittedSupport:
    support = FittedSupport(model)
    support.threshold = 0.0
    return support


def variants(services: Citeqa) -> list[Variant]:
    """The ablation rows, the shipped pipeline among them."""
    shipped = services.assistant
    if not isinstance(shipped.answerer, ExtractiveAnswerer) or not isinstance(
            shipped.support, FittedSupport):
        raise SystemExit("make eval ablates the extractive answerer and the fitted support")
    selection, support = shipped.answerer.selection, shipped.support.model

    def answerer(model: LinearModel) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(embedder=services.embedder, selection=model,
                                  max_sentences=services.settings.answer_sentences)

    similarity_only = LinearModel(("similarity",), np.ones(1), np.zeros(1), np.ones(1))
    return [
        Variant("naive: the most similar sentence", answerer=answerer(similarity_only)),
        Variant("selection without constraint features",
                answerer=answerer(_zeroed(selection, CONSTRAINT_FEATURES))),
        Variant("support without constraint features",
                support=FittedSupport(_zeroed(support, CONSTRAINT_FEATURES))),
        Variant("shipped"),
        Variant("shipped, no abstention", support=_never_abstains(support)),
        Variant("shipped + as_of question date", as_of_question_date=True),
    ]


def _tracker(progress: Progress, description: str) -> Callable[[int, int], None]:
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update


def _auroc(answerable: Sequence[QuestionResult], others: Sequence[QuestionResult]
           ) -> float | None:
    positives = [r.support for r in answerable if r.answerable and r.error is None]
    negatives = [r.support for r in others if not r.answerable and r.error is None]
    return round(auroc(positives, negatives), 4) if positives and negatives else None


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    """Run the sets, the ablations and the calibration; print three tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="Ask only the first N questions of each question file.")
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data",
                        help="Where the evaluation indexes live (kept between runs).")
    parser.add_argument("--no-ablations", action="store_true",
                        help="Only the shipped pipeline: skip the ablation rows.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "eval.json")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    # Tables are printed whole even when piped to a file.
    wide = Console(width=max(Console().width, 160))
    started = time.perf_counter()
    services = Citeqa.build(Settings(data_dir=args.data_dir))
    threshold = services.assistant.support.threshold
    runs = dev_runs(args.data_dir)
    scifact = Run(SHARED / "eval" / "scifact" / "corpus.jsonl.gz",
                  SHARED / "eval" / "scifact" / "questions.jsonl", "eval-scifact")
    seed = Run(seed_corpus(args.data_dir), HERE / "data" / "seed_questions.jsonl", "eval-seed")

    def ask(runs_: Sequence[Run], label: str, **kw: Any) -> list[QuestionResult]:
        return ask_all(services, runs_, label=label, console=console, limit=args.limit, **kw)

    rtqa = ask(runs["realtimeqa"], "realtimeqa")
    sets: dict[str, list[QuestionResult]] = {
        "scifact (all)": ask([scifact], "scifact"),
        "realtimeqa": rtqa,
        "realtimeqa as_of": ask(runs["realtimeqa"], "realtimeqa as_of",
                                as_of_question_date=True),
        # Near misses beside the answerable questions they were built from.
        "near-miss + realtimeqa": rtqa + ask(runs["near-miss"], "near-miss"),
        "own rc": ask(runs["own"], "own"),
        "seed (all)": ask([seed], "seed"),
    }
    summaries = {name: figures(results) for name, results in sets.items()}
    seed_report = EvalReport(summary={}, results=sets["seed (all)"])
    table = Table("metric", *summaries,
                  title=f"citeqa eval (make eval): check halves, support threshold {threshold}")
    table.add_row("questions", *(str(s["questions"]) for s in summaries.values()))
    for key, label in ROWS:
        table.add_row(label, *(_cell(s.get(key)) for s in summaries.values()))
    table.add_row("seed correct", *(
        f"{seed_correct(seed_report)}/{len(sets[name])}" if name == "seed (all)" else "—"
        for name in summaries))
    wide.print(table)
    out: dict[str, Any] = {"threshold": threshold, "sets": summaries,
                           "seed_correct": seed_correct(seed_report)}
    # citeqa verify on the same collections (bench/verify_eval.py; alone: make eval-verify).
    out["verify"] = evaluate_verification(services, args.data_dir, console, limit=args.limit)
    wide.print(verify_table(out["verify"]))

    if not args.no_ablations:
        ablations = Table("variant", "RTQA cite acc", "RTQA contain", "RTQA answered",
                          "near-miss abstained", "AUROC near-miss", "own contain",
                          "own unanswerable abstained", "AUROC own",
                          title="ablations (check halves; one change per row)")
        out["ablations"] = {}
        for variant in variants(services):
            with swapped(services, variant):
                label = variant.name
                kw = {"as_of_question_date": variant.as_of_question_date}
                news = ask(runs["realtimeqa"], label, **kw)
                near = ask(runs["near-miss"], label, **kw)
                own = ask(runs["own"], label)
            row: dict[str, Any] = {
                "realtimeqa": figures(news), "near-miss": figures(news + near),
                "own": figures(own), "auroc_near_miss": _auroc(news, near),
                "auroc_own": _auroc(own, own),
            }
            if variant.support is not None and variant.support.threshold == 0.0:
                row["calibration"] = calibration(news + own)
                row["auroc_right"] = figures(news + own)["support_auroc_right"]
            out["ablations"][variant.name] = row
            ablations.add_row(label, *(_cell(v) for v in (
                row["realtimeqa"]["citation_accuracy"], row["realtimeqa"]["answer_containment"],
                row["realtimeqa"]["answered"], row["near-miss"]["abstention_recall"],
                row["auroc_near_miss"], row["own"]["answer_containment"],
                row["own"]["abstention_recall"], row["auroc_own"])))
        wide.print(ablations)
        never = next(r for r in out["ablations"].values() if "calibration" in r)
        bins = Table("support", "questions", "mean support", "share right",
                     title="calibration: RealTimeQA and own check halves, abstention off "
                     f"(AUROC right vs wrong {_cell(never['auroc_right'])})")
        for row in never["calibration"]:
            if row["questions"]:
                bins.add_row(f"{row['support_from']:.2f}–{row['support_to']:.2f}",
                             str(row["questions"]), _cell(row["mean_support"]),
                             _cell(row["right"]))
        wide.print(bins)
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    console.print(f"[dim]written to {args.out} in {out['seconds']} s[/]")


if __name__ == "__main__":
    main()
