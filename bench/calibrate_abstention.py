"""Choose the abstention threshold from data (issue 2/3), and print the curve behind it.

Answerable: RealTimeQA questions asked of the RealTimeQA passages (each has its evidence there).
Unanswerable: the same questions asked of the SciFact abstracts, and SciFact claims asked of
the RealTimeQA passages (neither corpus can answer the other's questions).
Questions are split by a hash of their id: the threshold is chosen on the tuning half and
reported on both.

    CITEQA_DATA_DIR=/tmp/evaldata citeqa ingest ../shared/eval/realtimeqa/corpus.jsonl.gz \
        --collection realtimeqa
    CITEQA_DATA_DIR=/tmp/evaldata citeqa ingest ../shared/eval/scifact/corpus.jsonl.gz \
        --collection scifact
    CITEQA_DATA_DIR=/tmp/evaldata python bench/calibrate_abstention.py
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

from index.settings import Settings
from server.services import Services

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
OUT = Path(__file__).resolve().parent / "results" / "abstention.json"


def read_jsonl(path: Path) -> list[dict]:
    """Lines of a JSONL file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def half(question_id: str) -> str:
    """'tune' or 'check', stable for an id."""
    return "tune" if hashlib.sha1(question_id.encode()).digest()[0] % 2 == 0 else "check"


def main() -> None:
    services = Services.build(Settings())
    rtqa = read_jsonl(SHARED / "realtimeqa" / "questions.jsonl.gz")
    scifact = read_jsonl(SHARED / "scifact" / "questions.jsonl")
    runs = [(q, "realtimeqa", True) for q in rtqa]
    runs += [(q, "scifact", False) for q in rtqa]
    runs += [(q, "realtimeqa", False) for q in scifact]
    rows = []
    for i, (q, collection, answerable) in enumerate(runs):
        answer = services.assistant.ask(q["question"], collection=collection)
        rows.append({"id": q["id"], "half": half(q["id"]), "answerable": answerable,
                     "support": answer.support, "ms": answer.timings_ms["total"]})
        if i % 500 == 0:
            print(f"{i}/{len(runs)}", file=sys.stderr)
    curve = {}
    for name in ("tune", "check"):
        part = [r for r in rows if r["half"] == name]
        curve[name] = [_point(part, t / 100) for t in range(10, 71, 2)]
    best = max(curve["tune"], key=lambda p: p["balanced_accuracy"])
    check = next(p for p in curve["check"] if p["threshold"] == best["threshold"])
    latencies = sorted(r["ms"] for r in rows)
    latency = {"p50_ms": latencies[len(latencies) // 2],
               "p95_ms": latencies[int(len(latencies) * 0.95)], "questions": len(latencies)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"chosen": best["threshold"], "tune": best, "check": check,
                               "latency": latency, "curve": curve}, indent=1))
    print(f"{'thr':>5} {'abst.P':>7} {'abst.R':>7} {'answered':>9} {'bal.acc':>8}  (tune half)")
    for p in curve["tune"]:
        mark = " <- chosen" if p["threshold"] == best["threshold"] else ""
        print(f"{p['threshold']:5.2f} {p['abstain_precision']:7.3f} {p['abstain_recall']:7.3f} "
              f"{p['answered_when_answerable']:9.3f} {p['balanced_accuracy']:8.3f}{mark}")
    print(f"check half at {best['threshold']:.2f}: {json.dumps(check)}")
    print(f"ask latency in one warm process: {json.dumps(latency)}")


def _point(rows: list[dict], threshold: float) -> dict:
    abstained = [r["support"] < threshold for r in rows]
    unanswerable = [not r["answerable"] for r in rows]
    true_pos = sum(a and u for a, u in zip(abstained, unanswerable, strict=True))
    answered_ok = sum(not a and not u for a, u in zip(abstained, unanswerable, strict=True))
    n_abstained = sum(abstained) or 1
    n_unanswerable = sum(unanswerable) or 1
    n_answerable = (len(rows) - sum(unanswerable)) or 1
    recall = true_pos / n_unanswerable
    answered = answered_ok / n_answerable
    return {
        "threshold": round(threshold, 2),
        "abstain_precision": round(true_pos / n_abstained, 4),
        "abstain_recall": round(recall, 4),
        "answered_when_answerable": round(answered, 4),
        "balanced_accuracy": round((recall + answered) / 2, 4),
    }


if __name__ == "__main__":
    main()
