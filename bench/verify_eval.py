"""`make eval-verify`: how well `citeqa verify` tells supported, contradicted and unsupported
statements apart, on the verification set of `bench/verify_set.py`.

Run as `python -m bench.verify_eval [--limit N]`. Every statement is checked alone, in process
(`Citeqa.verify`), against its collection: RealTimeQA statements against the near misses' half
collection (`nearmiss-realtimeqa-half`), SciFact claims against the whole SciFact corpus
(`eval-scifact`); both are the collections `make eval` builds in `bench/.data`, ingested here if
missing. Prints one table (check half, the headline, beside the tuning half) and writes
`bench/results/verify.json` (numbers only). Each statement's verdict, by id, goes to
`bench/.data/verify-statements.jsonl` for looking at errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.near_miss import REALTIMEQA, read_jsonl
from bench.run_info import commit, loadavg
from bench.verify_set import Statement, build_verify_set, scifact_statements, write_jsonl
from citeqa import Citeqa
from core.settings import Settings
from index.loaders import load_sources
from qa.verify import Verdict

HERE = Path(__file__).resolve().parent
SCIFACT = HERE.parent.parent / "shared" / "eval" / "scifact"
RTQA_COLLECTION = "nearmiss-realtimeqa-half"
SCIFACT_COLLECTION = "eval-scifact"
HALVES = ("check", "tune")
VERDICTS = [v.value for v in Verdict]
# Corpora are far larger than one upload; the loaders still refuse gzip bombs.
_CORPUS_BYTES = 2 * 1024**3
TARGETS = {"supported_precision": 0.90, "supported_recall": 0.60,
           "swapped_marked_supported": 0.10, "swapped_marked_contradicted": 0.50}


@dataclass(frozen=True)
class Checked:
    """One statement's verdict, the documents it cited and the time it took per sentence."""

    statement: Statement
    verdict: str
    evidence: list[str]
    sentences: int
    ms_per_sentence: float


def statement_verdict(verdicts: Sequence[str]) -> str:
    """One verdict for a statement the sentence splitter cut in several: contradicted if any
    part is, supported if every checkable part is, not_checkable if none is checkable."""
    checkable = [v for v in verdicts if v != Verdict.NOT_CHECKABLE]
    if not checkable:
        return Verdict.NOT_CHECKABLE.value
    if Verdict.CONTRADICTED in checkable:
        return Verdict.CONTRADICTED.value
    if all(v == Verdict.SUPPORTED for v in checkable):
        return Verdict.SUPPORTED.value
    return Verdict.UNSUPPORTED.value


def check_all(services: Citeqa, statements: Sequence[Statement], collection: str,
              console: Console, label: str) -> list[Checked]:
    """Every statement checked alone against the collection, timed."""
    checked: list[Checked] = []
    with console.status(f"checking {label}") as status:
        for done, statement in enumerate(statements, start=1):
            started = time.perf_counter()
            result = services.verify(statement.text, collection=collection)
            elapsed = (time.perf_counter() - started) * 1000
            parts = result.sentences
            checked.append(Checked(
                statement, statement_verdict([s.verdict.value for s in parts]),
                list(dict.fromkeys(e.doc_id for s in parts for e in s.evidence)),
                len(parts), elapsed / max(len(parts), 1)))
            if done % 50 == 0:
                status.update(f"checking {label}: {done}/{len(statements)}")
    return checked


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def score_news(checked: Sequence[Checked]) -> dict[str, Any]:
    """Per-verdict precision and recall, the confusion, and the rates the targets name."""
    confusion = {expected: Counter[str]() for expected in ("supported", "contradicted",
                                                           "unsupported")}
    by_kind = {kind: Counter[str]() for kind in ("original", "reworded", "swapped",
                                                 "held_out")}
    for item in checked:
        assert item.statement.expected is not None
        confusion[item.statement.expected][item.verdict] += 1
        by_kind[item.statement.kind][item.verdict] += 1
    shapes = {shape: Counter(item.verdict for item in checked
                             if item.statement.kind == "swapped"
                             and item.statement.answer_shape == shape)
              for shape in ("name_or_number", "common_word")}
    per_verdict: dict[str, dict[str, float | int | None]] = {}
    for verdict in VERDICTS:
        marked = sum(row[verdict] for row in confusion.values())
        expected = sum(confusion[verdict].values()) if verdict in confusion else 0
        right = confusion[verdict][verdict] if verdict in confusion else 0
        per_verdict[verdict] = {"expected": expected, "marked": marked,
                                "precision": _share(right, marked) if expected else None,
                                "recall": _share(right, expected)}
    kinds = {kind: {"statements": sum(row.values()),
                    **{v: _share(row[v], sum(row.values())) for v in VERDICTS}}
             for kind, row in by_kind.items()}
    return {
        "statements": len(checked),
        "per_verdict": per_verdict,
        "by_kind": kinds,
        "confusion": {e: {v: row[v] for v in VERDICTS} for e, row in confusion.items()},
        "supported_precision": per_verdict["supported"]["precision"],
        "supported_recall": per_verdict["supported"]["recall"],
        "swapped_marked_supported": kinds["swapped"]["supported"],
        "swapped_marked_contradicted": kinds["swapped"]["contradicted"],
        "held_out_marked_supported": kinds["held_out"]["supported"],
        "swapped_by_answer_shape": {
            shape: {"statements": sum(row.values()),
                    **{v: _share(row[v], sum(row.values())) for v in VERDICTS}}
            for shape, row in shapes.items()},
        "split_statements": sum(item.sentences > 1 for item in checked),
    }


def score_scifact(checked: Sequence[Checked]) -> dict[str, Any]:
    """The verdicts of SciFact claims, and how often a supported one cites a gold abstract."""
    verdicts = Counter(item.verdict for item in checked)
    with_gold = sum(item.verdict == Verdict.SUPPORTED
                    and bool(set(item.evidence) & set(item.statement.doc_id.split(",")))
                    for item in checked)
    return {"claims": len(checked),
            "verdicts": {v: _share(verdicts[v], len(checked)) for v in VERDICTS},
            "support_evidence_rate": _share(with_gold, len(checked)),
            "supported_citing_gold": _share(with_gold, verdicts[Verdict.SUPPORTED.value])}


def latency(checked: Sequence[Checked]) -> dict[str, float | None]:
    """Milliseconds per sentence checked, p50 and p95."""
    times = [item.ms_per_sentence for item in checked]
    if not times:
        return {"p50_ms": None, "p95_ms": None}
    return {"p50_ms": round(float(np.percentile(times, 50)), 1),
            "p95_ms": round(float(np.percentile(times, 95)), 1)}


def ingest(services: Citeqa, corpus: Path, collection: str, console: Console) -> None:
    """The corpus into the collection; documents already indexed unchanged are skipped."""
    with console.status(f"ingesting {corpus.name} into {collection} (once; kept after)"):
        services.ingest(list(load_sources([corpus], max_bytes=_CORPUS_BYTES)),
                        collection=collection)


def evaluate_verification(services: Citeqa, data_dir: Path, console: Console, *,
                          limit: int | None = None, scifact: bool = True) -> dict[str, Any]:
    """Build the set, check every statement, score each half; the figures as JSON."""
    built = build_verify_set(read_jsonl(REALTIMEQA / "questions.jsonl.gz"),
                             read_jsonl(REALTIMEQA / "corpus.jsonl.gz"))
    ingest(services, write_jsonl(data_dir / "nearmiss-half-corpus.jsonl", built.kept_passages),
           RTQA_COLLECTION, console)
    # Loading the model's session and the collection's indexes is not a sentence's time.
    services.verify("A warm-up sentence that names Lisbon and 2024.", collection=RTQA_COLLECTION)
    news = check_all(services, built.statements[:limit], RTQA_COLLECTION, console, "RealTimeQA")
    claims: list[Checked] = []
    if scifact:
        ingest(services, SCIFACT / "corpus.jsonl.gz", SCIFACT_COLLECTION, console)
        statements = scifact_statements(read_jsonl(SCIFACT / "questions.jsonl"))[:limit]
        services.verify("A warm-up sentence about 12 proteins.", collection=SCIFACT_COLLECTION)
        claims = check_all(services, statements, SCIFACT_COLLECTION, console, "SciFact")
    write_jsonl(data_dir / "verify-statements.jsonl", [
        {**item.statement.as_dict(), "verdict": item.verdict, "evidence": item.evidence,
         "ms_per_sentence": round(item.ms_per_sentence, 2)} for item in news + claims])
    sizes = {record.name: {"documents": documents, "chunks": chunks}
             for record, documents, chunks in services.collections()
             if record.name in (RTQA_COLLECTION, SCIFACT_COLLECTION)}
    return {
        "halves": {h: {"realtimeqa": score_news([c for c in news if c.statement.half == h]),
                       "scifact": score_scifact([c for c in claims if c.statement.half == h])}
                   for h in HALVES},
        "scifact_all": score_scifact(claims),
        "latency": {"realtimeqa": latency(news), "scifact": latency(claims)},
        "collections": sizes,
        "skipped": built.skipped,
        "held_out_passages": len(built.held_out_ids),
        "kept_passages": len(built.kept_passages),
        "targets": TARGETS,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def verify_table(figures: dict[str, Any]) -> Table:
    """The figures as one table: check half beside tuning half."""
    table = Table("metric", "check half", "tuning half", "target",
                  title="citeqa verify (make eval-verify): RealTimeQA statements, SciFact claims")
    halves = [figures["halves"][h] for h in HALVES]
    news = [h["realtimeqa"] for h in halves]
    table.add_row("statements (supported / contradicted / unsupported expected)", *(
        " / ".join(str(n["per_verdict"][v]["expected"]) for v in VERDICTS[:3]) for n in news),
        "")
    for verdict in VERDICTS[:3]:
        table.add_row(f"{verdict}: precision / recall", *(
            f"{_cell(n['per_verdict'][verdict]['precision'])} / "
            f"{_cell(n['per_verdict'][verdict]['recall'])}" for n in news),
            "≥ 0.90 / ≥ 0.60" if verdict == "supported" else "")
    table.add_row("marked not_checkable (of all)", *(
        f"{n['per_verdict']['not_checkable']['marked']} of {n['statements']}" for n in news), "")
    for kind in ("original", "reworded"):
        table.add_row(f"{kind} sentences marked supported",
                      *(_cell(n["by_kind"][kind]["supported"]) for n in news), "")
    table.add_row("swapped answer marked supported",
                  *(_cell(n["swapped_marked_supported"]) for n in news), "≤ 0.10")
    table.add_row("swapped answer marked contradicted",
                  *(_cell(n["swapped_marked_contradicted"]) for n in news), "≥ 0.50")
    for shape, label in (("name_or_number", "a name or number"),
                         ("common_word", "a lower-case word")):
        table.add_row(f"  swapped {label}: n, supported / contradicted", *(
            f"{n['swapped_by_answer_shape'][shape]['statements']}, "
            f"{_cell(n['swapped_by_answer_shape'][shape]['supported'])} / "
            f"{_cell(n['swapped_by_answer_shape'][shape]['contradicted'])}" for n in news), "")
    table.add_row("held-out sentence marked supported",
                  *(_cell(n["held_out_marked_supported"]) for n in news), "")
    scifact = [h["scifact"] for h in halves]
    if any(s["claims"] for s in scifact):
        table.add_row("SciFact claims", *(str(s["claims"]) for s in scifact), "")
        table.add_row("SciFact supported, citing a gold abstract",
                      *(_cell(s["support_evidence_rate"]) for s in scifact), "")
        table.add_row("SciFact verdicts (sup / contra / unsup / n.c.)", *(
            " / ".join(_cell(s["verdicts"][v]) for v in VERDICTS) for s in scifact), "")
    for name, timing in figures["latency"].items():
        size = figures["collections"].get(
            RTQA_COLLECTION if name == "realtimeqa" else SCIFACT_COLLECTION, {})
        if timing["p50_ms"] is not None:
            table.add_row(f"ms per sentence p50 / p95, {name} ({size.get('chunks', '?')} chunks)",
                          f"{timing['p50_ms']} / {timing['p95_ms']} (both halves)", "",
                          "p50 ≤ 50 at 100k")
    return table


def main() -> None:
    """Check the verification set and print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None,
                        help="Check only the first N statements of each set.")
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data",
                        help="Where the evaluation indexes live (kept between runs).")
    parser.add_argument("--no-scifact", action="store_true", help="Skip the SciFact claims.")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "verify.json")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    load_before = loadavg()
    started = time.perf_counter()
    services = Citeqa.build(Settings(data_dir=args.data_dir))
    figures = evaluate_verification(services, args.data_dir, console, limit=args.limit,
                                    scifact=not args.no_scifact)
    Console(width=max(Console().width, 140)).print(verify_table(figures))
    out = {"command": " ".join(["python -m bench.verify_eval", *sys.argv[1:]]),
           "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "commit": commit(), "embedding_model": services.embedder.name,
           "load_average_before": load_before,
           "load_average_after": loadavg(),
           **figures, "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    console.print(f"[dim]written to {args.out} in {out['seconds']} s[/]")


if __name__ == "__main__":
    main()
