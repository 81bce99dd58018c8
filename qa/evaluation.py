"""Evaluation metrics: score the answers to a labelled question set (read by `qa.eval_set`,
asked by `citeqa.evaluate`).

Retrieval is scored on the ranked distinct documents of `answer.passages` (Recall@k, MRR@10,
nDCG@10, binary relevance against `gold_doc_ids`); answers on containment of a gold answer and
the SQuAD-style token F1 of the best cited sentence; citations on whether they point at a gold
document; abstention, when the set marks questions `"answerable": false`, on precision and
recall. Data format: ../shared/eval/README.md.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from core.documents import IngestReport
from core.errors import CiteqaError
from qa.answer import Answer

# Passages asked for per question: enough for Recall@10, MRR@10 and nDCG@10.
TOP_K = 10
# The cut-offs reported for Recall@k.
RECALL_KS = (1, 5, 10)

_MARKER = re.compile(r"\[\d+\]")
# Punctuation and symbols become spaces, not nothing, so "Bills—the" still contains "bills"
# and "Hamlin's" still contains "hamlin"; both sides are normalised the same way.
_NON_WORD = re.compile(r"[^\w\s]|_")
_ARTICLES = frozenset({"a", "an", "the"})


@dataclass
class EvalQuestion:
    """One labelled question: its gold documents and, when known, gold answers."""

    id: str
    question: str
    gold_doc_ids: list[str]
    answers: list[str] = field(default_factory=list)
    answerable: bool | None = None
    answer_in_evidence: bool | None = None
    # When the question was asked (YYYY-MM-DD): its as_of with --as-of-question-date.
    date: str | None = None

    @property
    def is_answerable(self) -> bool:
        """False only when the set says so; questions without the field are answerable."""
        return self.answerable is not False

    @property
    def scores_answer(self) -> bool:
        """Whether answer containment and F1 apply: gold answers that the evidence holds."""
        if not self.is_answerable or not self.answers:
            return False
        # RealTimeQA marks answers absent from the evidence; an extractive answer cannot
        # contain those, so they would only measure the data.
        return self.answer_in_evidence is not False


@dataclass
class QuestionResult:
    """What happened to one question, and every metric that applies to it (else None)."""

    id: str
    question: str
    answerable: bool
    gold_doc_ids: list[str]
    answer: str = ""
    abstained: bool = False
    support: float = 0.0
    retrieved: list[str] = field(default_factory=list)
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    mrr_at_10: float | None = None
    ndcg_at_10: float | None = None
    contains_answer: bool | None = None
    answer_f1: float | None = None
    first_citation_correct: bool | None = None
    citations: int = 0
    gold_citations: int = 0
    latency_ms: float | None = None
    mode: str = "extractive"
    generated_kept: int = 0
    generated_dropped: int = 0
    error: str | None = None

    @property
    def right(self) -> bool:
        """Answered, and rightly: an answerable question, cited from a gold article (where
        the set names one), with a gold answer in the text (where the set gives answers)."""
        return (self.answerable and not self.abstained and self.error is None
                and self.first_citation_correct is not False
                and self.contains_answer is not False)


@dataclass
class EvalReport:
    """The summary of a run, each question's result, and what the corpus ingest did."""

    summary: dict[str, float | int | None]
    results: list[QuestionResult]
    ingest: IngestReport = field(default_factory=IngestReport)
    setup: dict[str, Any] = field(default_factory=dict)
    calibration: list[dict[str, float | int | None]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, written by `citeqa eval --out`."""
        return {
            "summary": self.summary,
            "calibration": self.calibration,
            "setup": self.setup,
            "ingest": self.ingest.to_dict(),
            "results": [asdict(result) for result in self.results],
        }



def normalize_answer(text: str) -> str:
    """Lower-case, without [n] markers or punctuation, single-spaced: for comparing answers."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _MARKER.sub(" ", text)
    text = _NON_WORD.sub(" ", text)
    return " ".join(text.split())


def contains_answer(answer_text: str, gold_answers: Sequence[str]) -> bool:
    """True when some gold answer appears in the answer text as whole words."""
    # Padding with spaces keeps "10" from matching inside "100".
    haystack = f" {normalize_answer(answer_text)} "
    for gold in gold_answers:
        needle = normalize_answer(gold)
        if needle and f" {needle} " in haystack:
            return True
    return False


def answer_tokens(text: str) -> list[str]:
    """The normalised words of a text without articles, as token F1 counts them."""
    return [token for token in normalize_answer(text).split() if token not in _ARTICLES]


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style F1 of the shared tokens of a prediction and a gold answer."""
    predicted, expected = answer_tokens(prediction), answer_tokens(gold)
    if not predicted or not expected:
        return float(predicted == expected)
    remaining = list(expected)
    common = 0
    for token in predicted:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if common == 0:
        return 0.0
    precision = common / len(predicted)
    recall = common / len(expected)
    return 2 * precision * recall / (precision + recall)


def ranked_doc_ids(answer: Answer) -> list[str]:
    """The distinct documents of the answer's passages, in rank order (first occurrence)."""
    return list(dict.fromkeys(passage.doc_id for passage in answer.passages))


def recall_at(ranked_doc_ids: Sequence[str], gold: Collection[str], k: int) -> float:
    """Share of the gold documents found in the top k."""
    relevant = _gold_set(gold)
    return len(relevant.intersection(ranked_doc_ids[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """1 / rank of the first gold document in the top k, or 0."""
    relevant = _gold_set(gold)
    for rank, doc_id in enumerate(ranked[:k], start=1):
        if doc_id in relevant:
            return 1 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """nDCG of the top k with binary relevance; the ideal ranks min(|gold|, k) gold documents."""
    relevant = _gold_set(gold)
    dcg = sum(1 / math.log2(rank + 1)
              for rank, doc_id in enumerate(ranked[:k], start=1) if doc_id in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def _gold_set(gold: Collection[str]) -> set[str]:
    # An empty gold set would make every ranking perfect or undefined; callers skip those.
    if not gold:
        raise ValueError("retrieval metrics need at least one gold document")
    return set(gold)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between ranks; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties half)."""
    if not positives or not negatives:
        raise ValueError("AUROC needs at least one positive and one negative score")
    ranked = sorted([(score, 1) for score in positives] + [(score, 0) for score in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        # Tied scores share the mean of their ranks (1-based).
        mean_rank = (i + 1 + j) / 2
        rank_sum += mean_rank * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# --- scoring -------------------------------------------------------------------------------


def score_answer(question: EvalQuestion, answer: Answer) -> QuestionResult:
    """Every metric that applies to one question's answer."""
    ranked = ranked_doc_ids(answer)
    gold = set(question.gold_doc_ids)
    result = QuestionResult(
        id=question.id,
        question=question.question,
        answerable=question.is_answerable,
        gold_doc_ids=list(question.gold_doc_ids),
        answer=answer.answer,
        abstained=answer.abstained,
        support=answer.support,
        retrieved=ranked,
        latency_ms=answer.timings_ms.get("total"),
        mode=answer.mode,
        generated_kept=len(answer.citations) if answer.mode == "llm" else 0,
        generated_dropped=len(answer.unsupported),
    )
    # Unanswerable questions are judged only on abstention; there is nothing to retrieve.
    if question.is_answerable and gold:
        result.recall_at_1, result.recall_at_5, result.recall_at_10 = (
            recall_at(ranked, gold, k) for k in RECALL_KS
        )
        result.mrr_at_10 = mrr_at(ranked, gold, TOP_K)
        result.ndcg_at_10 = ndcg_at(ranked, gold, TOP_K)
        cited = [] if answer.abstained else answer.citations
        result.first_citation_correct = bool(cited) and cited[0].doc_id in gold
        result.citations = len(cited)
        result.gold_citations = sum(citation.doc_id in gold for citation in cited)
    if question.scores_answer:
        result.contains_answer = (not answer.abstained
                                  and contains_answer(answer.answer, question.answers))
        result.answer_f1 = 0.0 if answer.abstained else best_sentence_f1(answer, question.answers)
    return result


def best_sentence_f1(answer: Answer, gold_answers: Sequence[str]) -> float:
    """Highest token F1 between one answer sentence (a citation quote) and one gold answer."""
    # Each citation quotes exactly one answer sentence; without citations, the whole answer.
    sentences = [citation.quote for citation in answer.citations] or [answer.answer]
    return max((token_f1(sentence, gold) for sentence in sentences for gold in gold_answers),
               default=0.0)


def failed_result(question: EvalQuestion, error: CiteqaError) -> QuestionResult:
    """The record of a question the assistant refused (counted as an error, not scored)."""
    return QuestionResult(
        id=question.id,
        question=question.question,
        answerable=question.is_answerable,
        gold_doc_ids=list(question.gold_doc_ids),
        error=f"{error.code}: {error.detail}",
    )


def summarize(results: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    """Averages over the questions each metric applies to; None where none does."""
    scored = [r for r in results if r.error is None]
    retrieval = [r for r in scored if r.recall_at_1 is not None]
    answered = [r for r in scored if r.contains_answer is not None]
    summary: dict[str, float | int | None] = {
        "questions": len(results),
        "errors": len(results) - len(scored),
        "abstained": sum(r.abstained for r in scored),
        "retrieval_questions": len(retrieval),
        "answer_questions": len(answered),
    }
    for k in RECALL_KS:
        summary[f"recall@{k}"] = _mean([getattr(r, f"recall_at_{k}") for r in retrieval])
    summary["mrr@10"] = _mean([r.mrr_at_10 for r in retrieval])
    summary["ndcg@10"] = _mean([r.ndcg_at_10 for r in retrieval])
    summary["answer_containment"] = _mean([r.contains_answer for r in answered])
    summary["answer_f1"] = _mean([r.answer_f1 for r in answered])
    summary["citation_accuracy"] = _mean([r.first_citation_correct for r in retrieval])
    citations = sum(r.citations for r in retrieval)
    summary["citation_precision"] = (
        _round(sum(r.gold_citations for r in retrieval) / citations) if citations else None
    )
    summary.update(_abstention(scored))
    summary.update(_support_auroc(scored))
    generated = sum(r.generated_kept + r.generated_dropped for r in scored)
    summary["generated_sentences"] = generated
    summary["generated_dropped_share"] = (
        _round(sum(r.generated_dropped for r in scored) / generated) if generated else None)
    summary["llm_fallbacks"] = sum(r.mode == "llm-fallback" for r in scored)
    latencies = [r.latency_ms for r in scored if r.latency_ms is not None]
    summary["latency_p50_ms"] = _round(percentile(latencies, 50), 1)
    summary["latency_p95_ms"] = _round(percentile(latencies, 95), 1)
    return summary


def _abstention(results: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    unanswerable = [r for r in results if not r.answerable]
    abstained = [r for r in results if r.abstained]
    # Without unanswerable questions abstention precision would be 0 by construction, so the
    # metrics are reported only for sets that mark some questions unanswerable.
    if not unanswerable:
        return {"unanswerable_questions": 0, "abstention_precision": None,
                "abstention_recall": None}
    return {
        "unanswerable_questions": len(unanswerable),
        "abstention_precision": _mean([not r.answerable for r in abstained]),
        "abstention_recall": _mean([r.abstained for r in unanswerable]),
    }


def _support_auroc(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """How well `support` ranks: answerable above unanswerable questions, and (where the
    answers are scored) right answers above wrong ones. With abstention on, an abstained
    answer counts as not right; run with CITEQA_ABSTAIN_THRESHOLD=0 to score every answer."""
    answerable = [r.support for r in results if r.answerable]
    unanswerable = [r.support for r in results if not r.answerable]
    right = [r.support for r in results if r.right]
    wrong = [r.support for r in results if not r.right]
    return {
        "support_auroc_answerable": (_round(auroc(answerable, unanswerable))
                                     if answerable and unanswerable else None),
        "support_auroc_right": _round(auroc(right, wrong)) if right and wrong else None,
    }


# Support bins of the calibration table.
CALIBRATION_EDGES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def calibration(results: Sequence[QuestionResult],
                edges: Sequence[float] = CALIBRATION_EDGES) -> list[dict[str, float | int | None]]:
    """Per support bin: how many questions fell in it, their mean support and the share
    answered rightly. A calibrated support has the two close."""
    if len(edges) < 2 or any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"calibration edges must rise and be at least two: {list(edges)}")
    scored = [r for r in results if r.error is None]
    table: list[dict[str, float | int | None]] = []
    for low, high in pairwise(edges):
        last = high == edges[-1]
        inside = [r for r in scored if low <= r.support < high or (last and r.support == high)]
        table.append({
            "support_from": low, "support_to": high, "questions": len(inside),
            "mean_support": _mean([r.support for r in inside]),
            "right": _mean([r.right for r in inside]),
        })
    return table


def _mean(values: Sequence[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return _round(sum(present) / len(present)) if present else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
