"""Evaluation: hand-computed metric values, per-question scoring, question files, and one run."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from citeqa import Citeqa
from citeqa.evaluate import run_evaluation
from core.errors import InvalidInput
from qa.answer import Answer, Citation, Passage
from qa.eval_set import read_questions
from qa.evaluation import (
    EvalQuestion,
    QuestionResult,
    auroc,
    calibration,
    contains_answer,
    mrr_at,
    ndcg_at,
    normalize_answer,
    percentile,
    ranked_doc_ids,
    recall_at,
    score_answer,
    summarize,
    token_f1,
)

SUMMARY_KEYS = {
    "questions", "errors", "abstained", "retrieval_questions", "answer_questions",
    "unanswerable_questions", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
    "answer_containment", "answer_f1", "citation_accuracy", "citation_precision",
    "abstention_precision", "abstention_recall", "latency_p50_ms", "latency_p95_ms",
    "generated_sentences", "generated_dropped_share", "llm_fallbacks",
    "support_auroc_answerable", "support_auroc_right",
}


# --- building answers by hand ----------------------------------------------------------------


def _passage(doc_id: str, index: int = 0) -> Passage:
    return Passage(doc_id=doc_id, chunk_id=f"{doc_id}::h::{index}", start=0, end=4, text="text",
                   score=1.0)


def _citation(n: int, doc_id: str, quote: str) -> Citation:
    return Citation(n=n, doc_id=doc_id, title=doc_id, chunk_id=f"{doc_id}::h::0", start=0,
                    end=len(quote), quote=quote, score=0.5)


def _answer(passage_docs: list[str], citations: list[Citation], *, abstained: bool = False,
            ms: float = 100.0, support: float = 0.5) -> Answer:
    text = ("The articles do not say." if abstained
            else " ".join(f"{c.quote} [{c.n}]" for c in citations))
    return Answer(question="q?", answer=text, abstained=abstained, support=support,
                  citations=[] if abstained else citations,
                  passages=[_passage(d, i) for i, d in enumerate(passage_docs)],
                  timings_ms={"total": ms})


def _question(gold: list[str], answers: list[str] | None = None, *,
              answerable: bool | None = None,
              answer_in_evidence: bool | None = None) -> EvalQuestion:
    return EvalQuestion(id="q1", question="q?", gold_doc_ids=gold, answers=answers or [],
                        answerable=answerable, answer_in_evidence=answer_in_evidence)


# --- retrieval metrics -------------------------------------------------------------------------


def test_recall_counts_the_share_of_gold_documents_in_the_top_k() -> None:
    ranked = ["a", "b", "c"]
    assert recall_at(ranked, {"b", "z"}, 1) == 0.0
    assert recall_at(ranked, {"b", "z"}, 2) == 0.5
    assert recall_at(ranked, {"b", "z"}, 10) == 0.5
    assert recall_at(ranked, ["c"], 3) == 1.0


def test_mrr_is_the_reciprocal_rank_of_the_first_gold_document_within_k() -> None:
    assert mrr_at(["a", "b", "c"], {"c"}, 10) == pytest.approx(1 / 3)
    assert mrr_at(["a", "b", "c"], {"b", "c"}, 10) == 0.5
    assert mrr_at(["a", "b", "c"], {"c"}, 2) == 0.0
    assert mrr_at([], {"c"}, 10) == 0.0


def test_ndcg_with_binary_relevance() -> None:
    # Gold at rank 2 of 1: DCG 1/log2(3), ideal 1.
    assert ndcg_at(["x", "g"], {"g"}, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at(["g", "x"], {"g"}, 10) == 1.0
    # Two gold at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2(3)).
    assert ndcg_at(["g1", "x", "g2"], {"g1", "g2"}, 10) == pytest.approx(
        1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at(["x", "y"], {"g"}, 10) == 0.0
    # Beyond k the gold document does not count.
    assert ndcg_at(["x", "g"], {"g"}, 1) == 0.0


def test_ndcg_ideal_is_capped_at_k_gold_documents() -> None:
    gold = {f"g{i}" for i in range(12)}
    ranked = [f"g{i}" for i in range(10)]
    assert ndcg_at(ranked, gold, 10) == pytest.approx(1.0)
    # With one gold document of twelve at rank 1: 1 / (sum over ten ideal ranks).
    ideal = sum(1 / math.log2(r + 1) for r in range(1, 11))
    assert ndcg_at(["g0", "x"], gold, 10) == pytest.approx(1 / ideal)


def test_retrieval_metrics_refuse_an_empty_gold_set() -> None:
    with pytest.raises(ValueError, match="gold"):
        recall_at(["a"], set(), 1)


def test_ranked_doc_ids_keep_the_first_occurrence_of_each_document() -> None:
    answer = _answer(["a", "a", "b", "a", "c", "b"], [])
    assert ranked_doc_ids(answer) == ["a", "b", "c"]


def test_percentile_interpolates_between_ranks() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)  # rank 2.85: 30 + 0.85 * 10
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


# --- answer metrics -------------------------------------------------------------------------


def test_normalize_answer_drops_case_punctuation_markers_and_extra_space() -> None:
    assert normalize_answer("  The BUFFALO   Bills. [1] They won! [12]") == (
        "the buffalo bills they won")
    assert normalize_answer("“Ember Crown,” she said") == "ember crown she said"


def test_containment_ignores_case_punctuation_and_markers() -> None:
    assert contains_answer("Damar Hamlin plays for the BUFFALO bills. [1]", ["Buffalo Bills"])
    assert contains_answer("It raised $35 million [1] in May.", ["$35 million"])
    assert contains_answer("The team—Buffalo Bills—said so. [1]", ["buffalo bills"])
    assert contains_answer("Pope Benedict XVI's funeral. [1]", ["Pope Benedict XVI"])
    assert contains_answer("Nothing here. [1] The Bills won. [2]", ["Jets", "Bills"])


def test_containment_needs_whole_words_and_ignores_marker_numbers() -> None:
    assert not contains_answer("About 100 people came. [1]", ["10"])
    assert not contains_answer("Billsworth said so. [1]", ["Bills"])
    # The digit is only in the marker, which is not part of the answer.
    assert not contains_answer("Line 1 opened. [2]", ["2"])
    # A gold answer that is only punctuation matches nothing.
    assert not contains_answer("Anything. [1]", ["?!"])
    assert not contains_answer("Anything. [1]", [])


def test_token_f1_squad_style() -> None:
    assert token_f1("Buffalo Bills", "the Buffalo Bills!") == 1.0
    # 2 shared of 3 predicted and 2 gold tokens: P 2/3, R 1, F1 0.8.
    assert token_f1("the Buffalo Bills player", "Buffalo Bills") == pytest.approx(0.8)
    # Repeated tokens count once per occurrence in the gold: P 1/2, R 1.
    assert token_f1("bills bills", "bills") == pytest.approx(2 / 3)
    assert token_f1("New York Jets", "Buffalo Bills") == 0.0
    # Only articles on both sides: both empty, so equal.
    assert token_f1("the", "a") == 1.0
    assert token_f1("", "Bills") == 0.0


# --- scoring one answer ---------------------------------------------------------------------


def test_a_correct_cited_answer_scores_full_marks() -> None:
    question = _question(["d1"], ["Buffalo Bills"])
    answer = _answer(["d1", "d1", "d2", "d3"],
                     [_citation(1, "d1", "Hamlin plays for the Buffalo Bills.")], ms=120.0)
    result = score_answer(question, answer)
    assert result.retrieved == ["d1", "d2", "d3"]
    assert (result.recall_at_1, result.recall_at_5, result.recall_at_10) == (1.0, 1.0, 1.0)
    assert result.mrr_at_10 == 1.0
    assert result.ndcg_at_10 == 1.0
    assert result.contains_answer is True
    # Quote tokens: hamlin plays for buffalo bills; gold: buffalo bills. P 2/5, R 1.
    assert result.answer_f1 == pytest.approx(2 * 0.4 / 1.4)
    assert result.first_citation_correct is True
    assert (result.citations, result.gold_citations) == (1, 1)
    assert result.latency_ms == 120.0
    assert result.error is None


def test_best_sentence_f1_is_the_best_quote_against_the_best_gold_answer() -> None:
    question = _question(["d1"], ["Bills", "Buffalo Bills"])
    answer = _answer(["d1"], [_citation(1, "d1", "The weather was cold."),
                              _citation(2, "d1", "Buffalo Bills won.")])
    # "buffalo bills won" vs "buffalo bills": P 2/3, R 1.
    assert score_answer(question, answer).answer_f1 == pytest.approx(0.8)


def test_gold_at_rank_two_and_a_wrong_first_citation() -> None:
    question = _question(["d1"], ["Saltwind"])
    answer = _answer(["d2", "d1"], [_citation(1, "d2", "The ferry is new."),
                                    _citation(2, "d1", "It is named Saltwind.")])
    result = score_answer(question, answer)
    assert result.recall_at_1 == 0.0
    assert result.recall_at_5 == 1.0
    assert result.mrr_at_10 == 0.5
    assert result.ndcg_at_10 == pytest.approx(1 / math.log2(3))
    assert result.first_citation_correct is False
    assert (result.citations, result.gold_citations) == (2, 1)
    assert result.contains_answer is True


def test_an_abstained_answer_keeps_retrieval_but_fails_answer_and_citation() -> None:
    question = _question(["d1"], ["Buffalo Bills"])
    result = score_answer(question, _answer(["d1", "d2"], [], abstained=True))
    assert result.abstained
    assert result.recall_at_1 == 1.0
    assert result.contains_answer is False
    assert result.answer_f1 == 0.0
    assert result.first_citation_correct is False
    assert result.citations == 0


def test_an_unanswerable_question_is_judged_only_on_abstention() -> None:
    question = _question([], ["anything"], answerable=False)
    answer = _answer(["d1"], [_citation(1, "d1", "Anything at all.")])
    result = score_answer(question, answer)
    assert result.answerable is False
    assert result.recall_at_1 is None and result.ndcg_at_10 is None
    assert result.contains_answer is None and result.answer_f1 is None
    assert result.first_citation_correct is None
    assert result.citations == 0


def test_answers_missing_from_the_evidence_are_not_scored_for_containment() -> None:
    answer = _answer(["d1"], [_citation(1, "d1", "Bills won.")])
    assert score_answer(_question(["d1"], ["Bills"], answer_in_evidence=False),
                        answer).contains_answer is None
    assert score_answer(_question(["d1"], ["Bills"], answer_in_evidence=True),
                        answer).contains_answer is True
    # Retrieval-only sets (no answers) get no answer metrics either.
    assert score_answer(_question(["d1"]), answer).answer_f1 is None


# --- summarising ----------------------------------------------------------------------------


def test_summary_averages_each_metric_over_the_questions_it_applies_to() -> None:
    results = [
        score_answer(_question(["d1"], ["Buffalo Bills"]),
                     _answer(["d1", "d2"], [_citation(1, "d1", "The Buffalo Bills.")], ms=100)),
        score_answer(_question(["d1"], ["Saltwind"]),
                     _answer(["d2", "d1"], [_citation(1, "d2", "A ferry."),
                                            _citation(2, "d1", "Named Saltwind.")], ms=200)),
        score_answer(_question(["d1"], ["Bills"]),
                     _answer(["d3"], [], abstained=True, ms=300)),
        score_answer(_question([], answerable=False),
                     _answer(["d3"], [], abstained=True, ms=400)),
        score_answer(_question([], answerable=False),
                     _answer(["d3"], [_citation(1, "d3", "Wrong.")], ms=500)),
        QuestionResult(id="bad", question="", answerable=True, gold_doc_ids=["d1"],
                       error="invalid_input: empty question"),
    ]
    summary = summarize(results)
    assert set(summary) == SUMMARY_KEYS
    assert summary["questions"] == 6
    assert summary["errors"] == 1
    assert summary["abstained"] == 2
    assert summary["retrieval_questions"] == 3
    assert summary["answer_questions"] == 3
    assert summary["unanswerable_questions"] == 2
    assert summary["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["mrr@10"] == pytest.approx(1.5 / 3, abs=1e-4)
    assert summary["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 3, abs=1e-4)
    assert summary["answer_containment"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["citation_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    # Pooled over answerable questions: d1, d2, d1 cited; two are gold.
    assert summary["citation_precision"] == pytest.approx(2 / 3, abs=1e-4)
    # Abstained twice, once on an unanswerable question; one of two unanswerable abstained.
    assert summary["abstention_precision"] == 0.5
    assert summary["abstention_recall"] == 0.5
    assert summary["latency_p50_ms"] == 300.0
    assert summary["latency_p95_ms"] == pytest.approx(480.0)


def test_summary_leaves_out_what_does_not_apply() -> None:
    results = [score_answer(_question(["d1"]), _answer(["d1"], []))]
    summary = summarize(results)
    assert set(summary) == SUMMARY_KEYS
    assert summary["recall@10"] == 1.0
    assert summary["answer_containment"] is None and summary["answer_f1"] is None
    assert summary["citation_precision"] is None  # no citations at all
    assert summary["abstention_precision"] is None and summary["abstention_recall"] is None
    empty = summarize([])
    assert empty["questions"] == 0 and empty["recall@1"] is None
    assert empty["latency_p50_ms"] is None


# --- question files -------------------------------------------------------------------------


def _write_lines(path: Path, lines: list[str]) -> Path:
    data = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data.encode("utf-8")))
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_read_questions_from_gzip_with_optional_fields_and_a_limit(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "questions.jsonl.gz", [
        json.dumps({"id": 1, "question": "Who?", "gold_doc_ids": ["d1"], "answers": ["Ann"],
                    "answer_in_evidence": True}),
        "",
        json.dumps({"id": "2", "question": "Why?", "answerable": False}),
        json.dumps({"id": "3", "question": "What?", "gold_doc_ids": [31715818]}),
    ])
    questions = read_questions(path, None)
    assert [q.id for q in questions] == ["1", "2", "3"]
    assert questions[0] == EvalQuestion(id="1", question="Who?", gold_doc_ids=["d1"],
                                        answers=["Ann"], answerable=None,
                                        answer_in_evidence=True)
    assert questions[1].answerable is False and questions[1].gold_doc_ids == []
    assert questions[2].gold_doc_ids == ["31715818"]
    assert [q.id for q in read_questions(path, 2)] == ["1", "2"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: invalid JSON"),
        ('["a list"]', "line 2: expected a JSON object"),
        ('{"question": "Who?", "gold_doc_ids": []}', "line 2: missing 'id'"),
        ('{"id": "b", "gold_doc_ids": []}', "line 2: 'question' must be a string"),
        ('{"id": "b", "question": "Who?"}', "line 2: missing 'gold_doc_ids'"),
        ('{"id": "b", "question": "Who?", "gold_doc_ids": "d1x", "answers": [{}]}',
         "line 2: 'answers' must be a list"),
        ('{"id": "b", "question": "Who?", "gold_doc_ids": [], "answerable": "no"}',
         "line 2: 'answerable' must be true or false"),
        ('{"id": "a", "question": "Again?", "gold_doc_ids": []}', "line 2: duplicate"),
    ],
)
def test_read_questions_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write_lines(tmp_path / "questions.jsonl", [
        json.dumps({"id": "a", "question": "Who?", "gold_doc_ids": ["d1"]}), line,
    ])
    with pytest.raises(InvalidInput, match=message):
        read_questions(path, None)


def test_read_questions_refuses_missing_files_broken_gzip_and_bad_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        read_questions(tmp_path / "nope.jsonl", None)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_questions(broken, None)
    good = _write_lines(tmp_path / "q.jsonl", ['{"id": "a", "question": "?", "gold_doc_ids": []}'])
    with pytest.raises(InvalidInput, match="limit"):
        read_questions(good, 0)


# --- end to end -----------------------------------------------------------------------------

CORPUS = [
    {"id": "glass-harbour-ferry", "title": "Glass Harbour ferry returns",
     "text": "The Glass Harbour ferry between Orlen and Tavik Island resumed service on Monday. "
             "The new electric ferry, named Saltwind, carries 240 passengers and crosses in 35 "
             "minutes. Harbour master Ilse Brandvold said a ticket costs six euros."},
    {"id": "quillmoor-library", "title": "Quillmoor library reopens",
     "text": "The Quillmoor public library reopened after a two-year renovation. Its new "
             "reading room is heated by a geothermal well. Head librarian Casimir Oduya said "
             "the library now holds 90,000 books."},
    {"id": "redcliff-pepper-festival", "title": "Redcliff pepper festival",
     "text": "The annual Redcliff chili pepper festival drew 12,000 visitors this weekend. The "
             "hottest-pepper contest was won by farmer Aurelia Santosa with a pepper called "
             "Ember Crown."},
    {"id": "hollow-pine-comet", "title": "Comet found at Hollow Pine",
     "text": "Astronomers at the Hollow Pine Observatory discovered a faint comet on 3 March. "
             "The comet will pass closest to the Sun in November."},
]
QUESTIONS = [
    {"id": "ferry", "question": "What is the new electric ferry at Glass Harbour named?",
     "gold_doc_ids": ["glass-harbour-ferry"], "answers": ["Saltwind"]},
    {"id": "pepper", "question": "Who won the hottest-pepper contest at the Redcliff festival?",
     "gold_doc_ids": ["redcliff-pepper-festival"], "answers": ["Aurelia Santosa"]},
    {"id": "nitrogen", "question": "What is the boiling point of liquid nitrogen?",
     "gold_doc_ids": [], "answerable": False},
    # Refused by the assistant (empty question): recorded as an error, not a crash.
    {"id": "empty", "question": "   ", "gold_doc_ids": ["quillmoor-library"]},
]


# --- support: ranking and calibration ----------------------------------------------------------


def test_auroc_is_the_chance_a_positive_outscores_a_negative() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert auroc([0.5, 0.5], [0.5]) == 0.5
    assert auroc([0.9, 0.3], [0.5]) == 0.5
    with pytest.raises(ValueError, match="at least one positive"):
        auroc([], [0.1])


def test_summary_reports_how_well_support_ranks_answers() -> None:
    right = _citation(1, "d1", "Ada Brandt won.")
    wrong = _citation(1, "d2", "Bo Lind lost.")
    results = [
        score_answer(_question(["d1"], ["Ada Brandt"]), _answer(["d1"], [right], support=0.9)),
        score_answer(_question(["d1"], ["Ada Brandt"]), _answer(["d2"], [wrong], support=0.4)),
        score_answer(_question([], answerable=False), _answer(["d2"], [wrong], support=0.3)),
        score_answer(_question([], answerable=False), _answer(["d2"], [wrong], support=0.6)),
    ]
    summary = summarize(results)
    # Answerable supports 0.9 and 0.4 against unanswerable 0.3 and 0.6: 3 of 4 pairs ordered.
    assert summary["support_auroc_answerable"] == 0.75
    # Right 0.9 against wrong 0.4, 0.3 and 0.6.
    assert summary["support_auroc_right"] == 1.0
    assert [r.right for r in results] == [True, False, False, False]


def test_calibration_bins_questions_by_support_with_the_share_right() -> None:
    right = _citation(1, "d1", "Ada Brandt won.")
    wrong = _citation(1, "d2", "Bo Lind lost.")
    results = [
        score_answer(_question(["d1"], ["Ada Brandt"]), _answer(["d1"], [right], support=s))
        for s in (0.92, 0.85, 1.0)
    ] + [
        score_answer(_question(["d1"], ["Ada Brandt"]), _answer(["d2"], [wrong], support=s))
        for s in (0.81, 0.02)
    ]
    table = calibration(results, edges=(0.0, 0.5, 1.0))
    assert [row["questions"] for row in table] == [1, 4]
    assert table[0]["right"] == 0.0
    assert table[1]["right"] == 0.75
    assert table[1]["mean_support"] == pytest.approx((0.92 + 0.85 + 1.0 + 0.81) / 4, abs=1e-4)
    with pytest.raises(ValueError, match="must rise"):
        calibration(results, edges=(0.5, 0.5))


@pytest.mark.slow
def test_run_evaluation_end_to_end_and_reuses_the_index(services: Citeqa,
                                                        tmp_path: Path) -> None:
    corpus = _write_lines(tmp_path / "corpus.jsonl", [json.dumps(d) for d in CORPUS])
    questions = _write_lines(tmp_path / "questions.jsonl.gz", [json.dumps(q) for q in QUESTIONS])
    calls: list[tuple[int, int]] = []
    ingest_calls: list[tuple[int, int]] = []

    report = run_evaluation(services, corpus=corpus, questions=questions, collection="evalset",
                            progress=lambda *a: calls.append(a),
                            ingest_progress=lambda *a: ingest_calls.append(a))

    assert sorted(report.ingest.added) == sorted(d["id"] for d in CORPUS)
    assert report.ingest.chunks >= len(CORPUS)
    summary = report.summary
    assert set(summary) == SUMMARY_KEYS
    assert summary["questions"] == 4 and summary["errors"] == 1
    assert summary["retrieval_questions"] == 2
    assert summary["recall@1"] == 1.0 and summary["mrr@10"] == 1.0
    assert summary["citation_accuracy"] == 1.0
    assert summary["answer_containment"] == 1.0
    assert summary["unanswerable_questions"] == 1
    assert summary["abstention_recall"] is not None
    assert summary["latency_p50_ms"] is not None and summary["latency_p95_ms"] is not None
    by_id = {r.id: r for r in report.results}
    assert by_id["ferry"].retrieved[0] == "glass-harbour-ferry"
    assert by_id["nitrogen"].recall_at_1 is None
    assert by_id["empty"].error is not None and by_id["empty"].error.startswith("empty_question")
    assert calls[-1] == (4, 4) and ingest_calls[-1] == (4, 4)
    written = json.loads(json.dumps(report.to_dict()))
    assert set(written) >= {"summary", "ingest", "results", "setup", "calibration"}
    assert sum(row["questions"] for row in written["calibration"]) == 3
    assert written["setup"]["collection"] == "evalset"

    again = run_evaluation(services, corpus=corpus, questions=questions, collection="evalset",
                           limit=2)
    assert again.ingest.added == [] and again.ingest.updated == []
    assert again.ingest.chunks == 0
    assert sorted(again.ingest.unchanged) == sorted(d["id"] for d in CORPUS)
    assert again.summary["questions"] == 2
    assert again.summary["recall@1"] == 1.0
