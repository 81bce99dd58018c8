"""Time-aware questions on RealTimeQA dev: plain, as_of only, and the time-window boost.

Each question is asked as of its own `date`. The boost factor, whether a window that leads
the ranking narrows the passages to it, whether the window runs on to as_of, and whether the
time phrase is searched for are chosen on the tuning half only; the check half reports plain,
as_of with only "documents after as_of excluded", the chosen factor as a boost alone, and the
chosen rule (R@1, R@5, citation accuracy: the first citation is the gold passage). Over the
collection `make eval` builds:

    python -m bench.time_sweep       # writes bench/results/time.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from bench.near_miss import half, read_jsonl
from citeqa import Citeqa
from core.settings import Settings
from qa.evaluation import TOP_K, EvalQuestion, score_answer
from qa.pipeline import Assistant
from qa.timeframe import parse_day, time_window

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "eval"

OUT = HERE / "results" / "time.json"
COLLECTION = "eval-realtimeqa"
BOOSTS = (1.5, 2.0, 3.0, 5.0, 100.0)
# A variant within this much of the tuning half's best is as good: the simpler one is kept.
TOLERANCE = 0.005


@dataclass(frozen=True)
class Variant:
    """One way of asking: as of the question's date or not, and what its time window does."""

    as_of: bool
    window: bool = False
    boost: float = 1.0
    narrow: bool = False
    drop_phrase: bool = False
    # Favour documents dated from the phrase's first day up to as_of (a report is dated on
    # or after what it reports), rather than only inside the phrase's own span.
    until_as_of: bool = True

    @property
    def name(self) -> str:
        """A row label."""
        if not self.as_of:
            return "plain (no as_of)"
        if not self.window:
            return "as_of: later documents excluded"
        return (f"as_of + window boost x{self.boost:g}"
                + (" + narrow when it leads" if self.narrow else "")
                + ("" if self.until_as_of else ", window ends with the phrase's span")
                + (", phrase not searched" if self.drop_phrase else ""))

    @property
    def simplicity(self) -> tuple[bool, bool, float]:
        """Fewer mechanisms and a smaller factor first."""
        return (self.drop_phrase, self.narrow, self.boost)


BASELINES = [Variant(as_of=False), Variant(as_of=True)]
SWEEP = ([Variant(True, True, boost, narrow) for narrow in (False, True) for boost in BOOSTS]
         + [Variant(True, True, 3.0, narrow, until_as_of=False) for narrow in (False, True)]
         + [Variant(True, True, 3.0, True, drop_phrase=True)])
METRICS = ("R@1", "R@5", "citation accuracy")


def main() -> None:
    """Sweep on the tuning half, report the chosen rule on the check half, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
    args = parser.parse_args()
    services = Citeqa.build(Settings(data_dir=args.data_dir))
    records = read_jsonl(SHARED / "realtimeqa" / "questions.jsonl.gz")[:args.limit]
    questions = [EvalQuestion(id=r["id"], question=r["question"],
                              gold_doc_ids=r["gold_doc_ids"], answers=r.get("answers", []),
                              answer_in_evidence=r.get("answer_in_evidence"),
                              date=_day(r["date"]).isoformat())
                 for r in records]
    parts = {part: [q for q in questions if half(q.id) == part] for part in ("tune", "check")}
    started = time.perf_counter()
    tune = {v.name: _run(services, v, parts["tune"]) for v in BASELINES + SWEEP}
    best = _choose(tune)
    boost_only = Variant(True, True, best.boost, until_as_of=best.until_as_of)
    check = {v.name: _run(services, v, parts["check"])
             for v in [*BASELINES, *([boost_only] if best != boost_only else []), best]}
    report: dict[str, Any] = {
        "collection": COLLECTION, "top_k": TOP_K,
        "questions": {part: len(qs) for part, qs in parts.items()},
        "with a time window": {part: sum(_window(q) is not None for q in qs)
                               for part, qs in parts.items()},
        "rule": f"best mean of R@1 and citation accuracy on the tuning half; of the variants "
                f"within {TOLERANCE} of it, the one with the fewest mechanisms and the "
                "smallest factor",
        "chosen on tune": best.name, "chosen": asdict(best),
        "tune": tune, "check": check, "seconds": round(time.perf_counter() - started),
    }
    _print("tune", tune)
    _print("check", check)
    print(f"chosen on the tuning half: {best.name}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")


def _choose(tune: dict[str, dict[str, dict[str, float | int]]]) -> Variant:
    def merit(variant: Variant) -> float:
        found = tune[variant.name]["all"]
        return (float(found["R@1"]) + float(found["citation accuracy"])) / 2

    top = max(merit(v) for v in SWEEP)
    return min((v for v in SWEEP if merit(v) >= top - TOLERANCE), key=lambda v: v.simplicity)


def _run(services: Citeqa, variant: Variant, questions: list[EvalQuestion]
         ) -> dict[str, dict[str, float | int]]:
    assistant = Assistant(store=services.store, embedder=services.embedder,
                          options=replace(services.options, time_boost=variant.boost))
    assistant.narrow_to_window = variant.narrow
    assistant.drop_time_phrase = variant.drop_phrase
    assistant.window_until_as_of = variant.until_as_of
    print(f"{variant.name}: {len(questions)} questions", file=sys.stderr, flush=True)
    rows: dict[str, list[tuple[bool, bool, bool]]] = {"all": [], "window": []}
    for q in questions:
        answer = assistant.ask(q.question, collection=COLLECTION, top_k=TOP_K,
                               as_of=_day(q.date) if variant.as_of else None,
                               time_phrases=variant.window)
        result = score_answer(q, answer)
        row = (result.recall_at_1 == 1, result.recall_at_5 == 1,
               bool(result.first_citation_correct))
        rows["all"].append(row)
        if _window(q) is not None:
            rows["window"].append(row)
    return {subset: {"questions": len(found),
                     **{metric: round(sum(r[i] for r in found) / len(found), 4) if found else 0
                        for i, metric in enumerate(METRICS)}}
            for subset, found in rows.items()}


def _window(question: EvalQuestion) -> object:
    return time_window(question.question, _day(question.date))


def _day(value: str | None) -> date:
    day = parse_day((value or "").replace("/", "-"))
    assert day is not None, value
    return day


def _print(part: str, results: dict[str, dict[str, dict[str, float | int]]]) -> None:
    print(f"\n{part} half ({next(iter(results.values()))['all']['questions']} questions; "
          f"in brackets the {next(iter(results.values()))['window']['questions']} with a "
          "time window)")
    width = max(len(name) for name in results)
    print(f"{'variant':{width}} " + " ".join(f"{m:>20}" for m in METRICS))
    for name, subsets in results.items():
        cells = [f"{subsets['all'][m]:.3f} ({subsets['window'][m]:.3f})" for m in METRICS]
        print(f"{name:{width}} " + " ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    main()
