"""Choose the abstention threshold from data, and print the curve behind it.

Three kinds of questions, each asked through the full pipeline:
- answerable: RealTimeQA questions asked of the RealTimeQA passages (their evidence is there);
- near misses: RealTimeQA questions asked of a collection holding only the *other* half of the
  passages (same weeks, same kind of news, but not the passage that answers them);
- unrelated: RealTimeQA questions asked of the SciFact abstracts, and SciFact claims asked of
  the RealTimeQA passages.
Questions are split in halves by a hash of their id: the threshold is chosen on the tuning half
by balanced accuracy (answered-when-answerable against the mean abstention rate of near misses
and unrelated questions) and reported on both halves.

    make eval                                 # builds bench/.data (or reuses it)
    python -m bench.calibrate_abstention      # writes bench/results/abstention.json
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from rich.progress import track

from index.ingest import ingest_documents
from index.loaders import record_document
from index.models import Document
from index.settings import Settings
from server.services import Services

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "eval"
OUT = HERE / "results" / "abstention.json"
NEAR_MISS_COLLECTION = "calib-realtimeqa-half"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def half(question_id: str) -> str:
    """'tune' or 'check', stable for an id."""
    return "tune" if hashlib.sha1(question_id.encode()).digest()[0] % 2 == 0 else "check"


def kept_in_near_miss_collection(question_id: str) -> bool:
    """Whether a question's passage is in the near-miss collection (a second, independent bit)."""
    return hashlib.sha1(question_id.encode()).digest()[1] % 2 == 0


def main() -> None:
    """Ask every question, build the curve, choose the threshold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / ".data")
    args = parser.parse_args()
    services = Services.build(Settings(data_dir=args.data_dir))
    rtqa = read_jsonl(SHARED / "realtimeqa" / "questions.jsonl.gz")
    scifact = read_jsonl(SHARED / "scifact" / "questions.jsonl")
    _build_near_miss_collection(services, rtqa)
    runs = [(q, "eval-realtimeqa", "answerable") for q in rtqa]
    runs += [(q, NEAR_MISS_COLLECTION, "answerable" if kept_in_near_miss_collection(q["id"])
              else "near_miss") for q in rtqa]
    runs += [(q, "eval-scifact", "unrelated") for q in rtqa]
    runs += [(q, "eval-realtimeqa", "unrelated") for q in scifact]
    rows = []
    for q, collection, kind in track(runs, description="asking"):
        answer = services.assistant.ask(q["question"], collection=collection)
        rows.append({"id": q["id"], "half": half(q["id"]), "kind": kind,
                     "support": answer.support, "ms": answer.timings_ms["total"]})
    curve = {name: [_point([r for r in rows if r["half"] == name], t / 100)
                    for t in range(10, 71, 1)] for name in ("tune", "check")}
    best = max(curve["tune"], key=lambda p: p["balanced_accuracy"])
    check = next(p for p in curve["check"] if p["threshold"] == best["threshold"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"chosen": best["threshold"], "tune": best, "check": check,
                               "curve": curve}, indent=1) + "\n")
    print(f"{'thr':>5} {'answered':>9} {'near-miss':>10} {'unrelated':>10} {'abst.P':>7} "
          f"{'bal.acc':>8}  (tune half; near-miss and unrelated are abstention rates)")
    for p in curve["tune"][::2]:
        mark = " <- best" if p["threshold"] == best["threshold"] else ""
        print(f"{p['threshold']:5.2f} {p['answered']:9.3f} {p['near_miss_abstained']:10.3f} "
              f"{p['unrelated_abstained']:10.3f} {p['abstain_precision']:7.3f} "
              f"{p['balanced_accuracy']:8.3f}{mark}")
    print(f"best on the tuning half: {best['threshold']:.2f}; check half there: "
          f"{json.dumps(check)}")


def _build_near_miss_collection(services: Services, questions: list[dict[str, Any]]) -> None:
    passage_of = {q["gold_doc_ids"][0]: q["id"] for q in questions}
    documents: list[Document] = []
    for line in read_jsonl(SHARED / "realtimeqa" / "corpus.jsonl.gz"):
        if kept_in_near_miss_collection(passage_of.get(line["id"], line["id"])):
            documents.append(record_document(line))
    report = ingest_documents(documents, store=services.store, collection=NEAR_MISS_COLLECTION,
                              embedder=services.embedder, settings=services.settings)
    print(f"near-miss collection: {report.summary()}")


def _point(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    def rate(kind: str) -> float:
        part = [r for r in rows if r["kind"] == kind]
        return sum(r["support"] < threshold for r in part) / (len(part) or 1)

    answered = 1.0 - rate("answerable")
    near, unrelated = rate("near_miss"), rate("unrelated")
    abstained = [r for r in rows if r["support"] < threshold]
    precision = (sum(r["kind"] != "answerable" for r in abstained) / len(abstained)
                 if abstained else 1.0)
    return {
        "threshold": round(threshold, 2),
        "answered": round(answered, 4),
        "near_miss_abstained": round(near, 4),
        "unrelated_abstained": round(unrelated, 4),
        "abstain_precision": round(precision, 4),
        "balanced_accuracy": round((answered + (near + unrelated) / 2) / 2, 4),
    }


if __name__ == "__main__":
    main()
