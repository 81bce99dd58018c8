"""`make train`: fit answer selection and support on the tuning halves of the dev sets.

Two small linear models, written to `qa/fitted/` with the data and figures they came from:

- **answer selection** (`answer_selection.json`): a conditional logit over every candidate
  sentence of a question's top passages (`qa.extract.SENTENCE_FEATURES`); the sentence that
  holds the gold answer in the gold article is the one to pick;
- **support** (`support.json`): a logistic regression giving the probability that the answer
  is right (its first quote is from a gold article and, where the set has answers, the answer
  text contains one), over the chosen answer's evidence (`qa.extract.SUPPORT_FEATURES`); a
  question the collection does not answer is never answered right. The abstention threshold
  is chosen on the tuning half: the highest that still answers 95% of RealTimeQA's
  questions (all answerable).

Sets, each split in halves by a hash of the question id (a near miss goes with its original):
RealTimeQA (../shared/eval; research use, so only these few weights are fitted on it, and no
text of it is stored), our own reading-comprehension sets (bench/data/rc*_questions.jsonl,
answerable and not), near misses built from RealTimeQA (bench/near_miss.py) and unrelated
questions (news asked of our articles, ours asked of the news). Figures are reported on the
half that was not fitted on.

    python -m bench.train_answerer          # make train
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from bench.near_miss import dev_sets, half
from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_documents
from index.loaders import record_document
from qa import extract
from qa.draft import Draft
from qa.evaluation import auroc, contains_answer
from qa.linear import FITTED, LinearModel
from qa.question import Question, prepare_question

HERE = Path(__file__).resolve().parent
BENCH = HERE
TOP_K = 10
# The share of RealTimeQA questions (all answerable) the chosen threshold must answer.
MIN_ANSWERED = 0.95
# L2 penalty on the standardised selection weights: enough to keep correlated features from
# taking large opposite weights.
SELECTION_L2 = 1e-1
SETS = ("realtimeqa", "near-miss", "own", "unrelated")


@dataclass
class Asked:
    """One question through retrieval, with every candidate sentence described."""

    id: str
    set: str
    kind: str
    answerable: bool
    question: Question
    sentences: list[Any]
    rows: list[dict[str, float]]
    positive: list[bool]
    answers: list[str]
    gold: set[str]
    evidence: dict[str, float] = field(default_factory=dict)
    cited: str | None = None
    right: bool = False
    contains: bool | None = None
    support: float = 0.0


def main() -> None:
    """Ask every dev question once, fit both models, choose the threshold, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=BENCH / ".data")
    parser.add_argument("--out", type=Path, default=FITTED)
    args = parser.parse_args()
    console = Console(stderr=True)
    settings = Settings(data_dir=args.data_dir)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, encoder=settings.encoder,
                                           cache_dir=settings.data_dir / "models",
                                           query_precision=settings.query_precision)
    # Fitted from scratch: nothing here reads the models being replaced.
    answerer = extract.ExtractiveAnswerer(embedder=embedder, selection=_zeros())
    services = Citeqa.build(settings, embedder=embedder, answerer=answerer,
                              support=_Unfitted())
    started = time.perf_counter()
    asked: list[Asked] = []
    for set_name, collection, questions in _runs(services, console):
        for question in track(questions, description=set_name, console=console):
            asked.append(_ask(services, answerer, set_name, collection, question))
    tune = [a for a in asked if half(a.id) == "tune"]
    answerer.selection = fit_selection([a for a in tune if a.answerable and any(a.positive)])
    for item in asked:
        _answer(answerer, item)
    support = fit_support([a for a in tune if a.evidence])
    for item in asked:
        item.support = (float(support.probabilities(support.matrix([item.evidence]))[0])
                        if item.evidence else 0.0)
    threshold = choose_threshold([a for a in tune if a.set == "realtimeqa"])
    curve = [_curve_point([a for a in asked if half(a.id) == "check"], t / 100)
             for t in range(4, 52, 4)]
    report = {name: {h: figures([a for a in asked if a.set == name and half(a.id) == h],
                                threshold) for h in ("tune", "check")} for name in SETS}
    kinds: dict[str, list[bool]] = {}
    for item in asked:
        if half(item.id) == "check" and not item.answerable:
            kinds.setdefault(item.kind, []).append(item.support < threshold)
    by_kind = {kind: round(sum(v) / len(v), 4) for kind, v in sorted(kinds.items())}
    meta = {"fitted_by": "python -m bench.train_answerer (make train)",
            "tuning_half_questions": {n: sum(a.set == n for a in tune) for n in SETS},
            "threshold": threshold,
            "check_half": {name: report[name]["check"] for name in SETS},
            "abstained_by_kind": by_kind,
            "curve_check_half": curve,
            "seconds": round(time.perf_counter() - started, 1)}
    selection = answerer.selection
    LinearModel(selection.features, selection.weights, selection.mean, selection.scale,
                selection.bias, meta).save("answer_selection", args.out)
    LinearModel(support.features, support.weights, support.mean, support.scale,
                support.bias, meta).save("support", args.out)
    _print(console, report, by_kind, threshold, selection, support)
    curve_table = Table("threshold", *(k for k in curve[0] if k != "threshold"),
                        title="check half: share answered (answerable) or abstained on (others)")
    for point in curve:
        curve_table.add_row(*(f"{v:.2f}" for v in point.values()))
    Console().print(curve_table)


class _Unfitted:
    threshold = 0.0

    def support(self, draft: Draft) -> float:
        return 0.0


def _zeros() -> LinearModel:
    n = len(extract.SENTENCE_FEATURES)
    return LinearModel(extract.SENTENCE_FEATURES, np.zeros(n), np.zeros(n), np.ones(n))


def _runs(services: Citeqa, console: Console) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Ingest the collections (reusing what is there) and list (set, collection, questions)."""
    sets = dev_sets()
    for name, lines in (("eval-realtimeqa", sets.realtimeqa_corpus),
                        ("nearmiss-realtimeqa-half", sets.kept_passages),
                        ("eval-own", sets.own_corpus)):
        report = ingest_documents([record_document(line) for line in lines],
                                  store=services.store, collection=name,
                                  embedder=services.embedder, settings=services.settings,
                                  prune=True)
        console.print(f"[dim]{name}: {report.summary()}[/]")
    return [
        ("realtimeqa", "eval-realtimeqa", sets.realtimeqa_questions),
        ("near-miss", "eval-realtimeqa", sets.swaps),
        ("near-miss", "nearmiss-realtimeqa-half", sets.removed),
        ("own", "eval-own", sets.own_questions),
        # Questions about something else entirely: news asked of our articles and back.
        ("unrelated", "eval-own", [_unrelated(q) for q in sets.realtimeqa_questions[::4]]),
        ("unrelated", "eval-realtimeqa", [_unrelated(q) for q in sets.own_questions[::2]]),
    ]


def _unrelated(question: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{question['id']}~unrelated", "question": question["question"],
            "gold_doc_ids": [], "answerable": False, "kind": "unrelated"}


def _ask(services: Citeqa, answerer: Any, set_name: str, collection: str,
         question: dict[str, Any]) -> Asked:
    target = services.store.collection(collection)
    prepared = prepare_question(question["question"], idf=target.idf,
                                max_chars=services.settings.max_question_chars)
    prepared, vector, candidates, _ = services.assistant._retrieve(
        prepared, target, TOP_K, None, {}, time_phrases=False)
    sentences = answerer.candidate_sentences(candidates)
    rows = extract.sentence_features(prepared, sentences, vector, embedder=services.embedder)
    gold = set(question.get("gold_doc_ids", []))
    scored = question.get("answer_in_evidence", True) is not False
    answers = question.get("answers", []) if scored else []
    evidence = question.get("evidence")
    positive = []
    for sentence in sentences:
        if sentence.document.id not in gold:
            positive.append(False)
        elif evidence:
            positive.append(sentence.text in evidence or evidence in sentence.text)
        elif answers:
            positive.append(contains_answer(sentence.text, answers))
        else:
            positive.append(True)
    if gold and not any(positive):
        # No single sentence read holds the answer: any sentence of a gold article will do.
        positive = [s.document.id in gold for s in sentences]
    return Asked(question["id"], set_name, question.get("kind", "answerable"),
                 question.get("answerable", True) is not False, prepared, sentences, rows,
                 positive, answers, gold)


def _answer(answerer: Any, item: Asked) -> None:
    draft = answerer.choose(item.question, item.sentences, item.rows)
    item.evidence = dict(draft.evidence)
    if not draft.sentences:
        item.cited, item.right, item.contains = None, False, False if item.answers else None
        return
    item.cited = draft.sentences[0].document.id
    text = " ".join(s.text for s in draft.sentences)
    item.contains = contains_answer(text, item.answers) if item.answers else None
    # Where the set cannot tell whether the answer is in the quote, an answer to "how many"
    # or "when" still has to state a number or a date to count as right.
    states_asked_kind = not (item.evidence["missing_number"] or item.evidence["missing_date"])
    item.right = (item.answerable and item.cited in item.gold and item.contains is not False
                  and (item.contains is not None or states_asked_kind))


def fit_selection(items: Sequence[Asked]) -> LinearModel:
    """Conditional logit: each question's positive sentences against all its candidates.

    Each set weighs the same in the fit, whatever its size: short news passages and long
    articles both have to be answered from the right sentence.
    """
    names = extract.SENTENCE_FEATURES
    matrices = [np.array([[row[n] for n in names] for row in a.rows]) for a in items]
    stacked = np.concatenate(matrices)
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-6
    data = [(torch.tensor((m - mean) / scale), torch.tensor(a.positive))
            for m, a in zip(matrices, items, strict=True)]
    sizes = {a.set: sum(b.set == a.set for b in items) for a in items}
    share = torch.tensor([1.0 / sizes[a.set] for a in items], dtype=torch.float64)
    share = share / share.sum()
    weights = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights], max_iter=300, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        total = (torch.stack([torch.logsumexp(x @ weights, 0)
                              - torch.logsumexp((x @ weights)[y], 0) for x, y in data])
                 * share).sum()
        value = total + SELECTION_L2 * (weights ** 2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    return LinearModel(names, weights.detach().numpy(), mean, scale)


def fit_support(items: Sequence[Asked]) -> LinearModel:
    """Logistic regression of "the answer is right" on the chosen answer's evidence."""
    names = extract.SUPPORT_FEATURES
    x = np.array([[a.evidence[n] for n in names] for a in items])
    y = torch.tensor([float(a.right) for a in items], dtype=torch.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = torch.tensor((x - mean) / scale)
    weights = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=300, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(z @ weights + bias, y)
        value = value + 1e-3 * (weights ** 2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    return LinearModel(names, weights.detach().numpy(), mean, scale, float(bias.item()))


def choose_threshold(answerable: Sequence[Asked]) -> float:
    """The highest support threshold that still answers MIN_ANSWERED of these questions."""
    supports = sorted(a.support for a in answerable)
    at = int(np.floor((1 - MIN_ANSWERED) * len(supports)))
    return round(max(supports[at] - 1e-4, 0.0), 4) if supports else 0.0


def figures(items: Sequence[Asked], threshold: float) -> dict[str, float | int | None]:
    """What a user of the set would see at the threshold, and how well support ranks."""
    answerable = [a for a in items if a.answerable]
    unanswerable = [a for a in items if not a.answerable]
    scored = [a for a in answerable if a.answers]

    def answered(a: Asked) -> bool:
        return a.support >= threshold and a.cited is not None

    out: dict[str, float | int | None] = {"questions": len(items)}
    if answerable:
        out["answered"] = _mean([answered(a) for a in answerable])
        out["citation_accuracy"] = _mean([answered(a) and a.cited in a.gold
                                          for a in answerable])
        out["right_if_answered_all"] = _mean([a.right for a in answerable])
    if scored:
        out["containment"] = _mean([answered(a) and bool(a.contains) for a in scored])
    if unanswerable:
        out["unanswerable_abstained"] = _mean([not answered(a) for a in unanswerable])
    if answerable and unanswerable:
        out["auroc_answerable"] = round(auroc([a.support for a in answerable],
                                              [a.support for a in unanswerable]), 4)
    rights = [a.support for a in items if a.right]
    wrongs = [a.support for a in items if not a.right]
    if rights and wrongs:
        out["auroc_right"] = round(auroc(rights, wrongs), 4)
    return out


def _curve_point(items: Sequence[Asked], threshold: float) -> dict[str, float]:
    """At one threshold: RealTimeQA and our answerable questions answered, and the share of
    each kind of unanswerable question abstained on."""
    def share(selected: list[Asked], answered: bool) -> float:
        return round(sum((a.support >= threshold) == answered for a in selected)
                     / max(len(selected), 1), 4)

    point = {"threshold": threshold,
             "realtimeqa answered": share([a for a in items if a.set == "realtimeqa"], True),
             "own answered": share([a for a in items if a.set == "own" and a.answerable],
                                   True)}
    for name in ("near-miss", "own", "unrelated"):
        point[f"{name} abstained"] = share(
            [a for a in items if a.set == name and not a.answerable], False)
    return point


def _mean(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _print(console: Console, report: dict[str, Any], by_kind: dict[str, float],
           threshold: float, selection: LinearModel, support: LinearModel) -> None:
    columns = [(name, which) for name in report for which in ("tune", "check")]
    table = Table("figure", *(f"{name} {which}" for name, which in columns),
                  title=f"make train: support threshold {threshold}")
    keys = list(dict.fromkeys(k for name, which in columns for k in report[name][which]))
    for key in keys:
        table.add_row(key, *("—" if report[n][w].get(key) is None else str(report[n][w][key])
                             for n, w in columns))
    Console().print(table)
    Console().print("unanswerable questions abstained on, check half, by kind: " + ", ".join(
        f"{kind} {share:.2f}" for kind, share in by_kind.items()))
    for model in (selection, support):
        console.print(", ".join(f"{n} {w:+.2f}" for n, w in sorted(
            zip(model.features, model.weights, strict=True), key=lambda t: -abs(t[1]))))


if __name__ == "__main__":
    main()
