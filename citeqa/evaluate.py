"""Evaluation, run: ingest a labelled corpus (reusing what is already indexed), ask every
question as a user would, and score the answers (`qa.evaluation`). `citeqa eval` and
`make eval` run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from citeqa.app import Citeqa
from core.errors import CiteqaError, InvalidInput
from index.ingest import ProgressCallback
from index.loaders import load_sources
from qa.eval_set import read_questions
from qa.evaluation import (
    TOP_K,
    EvalQuestion,
    EvalReport,
    QuestionResult,
    calibration,
    failed_result,
    score_answer,
    summarize,
)
from qa.timeframe import parse_day

# Question files and corpora can be far larger than a single upload; the loaders still refuse
# gzip bombs over their own decompression limit.
MIN_CORPUS_BYTES = 2 * 1024**3

def run_evaluation(
    citeqa: Citeqa,
    *,
    corpus: Path,
    questions: Path,
    collection: str,
    limit: int | None = None,
    progress: ProgressCallback | None = None,
    ingest_progress: ProgressCallback | None = None,
    as_of_question_date: bool = False,
) -> EvalReport:
    """Ingest the corpus (reusing what is already indexed), ask every question, score them.

    By default no time window applies. With `as_of_question_date`, a question with a `date`
    is asked as of that date (later documents unused, "this week"... read against it).
    """
    # Read the questions first: a bad line should fail before minutes of embedding.
    to_ask = read_questions(questions, limit)
    if not corpus.exists():
        raise InvalidInput(f"corpus not found: {corpus}")
    settings = citeqa.settings
    max_bytes = max(settings.max_upload_bytes, MIN_CORPUS_BYTES)
    ingest = citeqa.ingest(list(load_sources([corpus], max_bytes=max_bytes)),
                           collection=collection, progress=ingest_progress)
    results: list[QuestionResult] = []
    for done, question in enumerate(to_ask, start=1):
        try:
            answer = citeqa.ask(
                question.question, collection=collection, top_k=TOP_K,
                **_when(question, as_of_question_date))
        except CiteqaError as exc:
            results.append(failed_result(question, exc))
        else:
            results.append(score_answer(question, answer))
        if progress:
            progress(done, len(to_ask))
    setup = {
        "corpus": str(corpus),
        "questions": str(questions),
        "collection": collection,
        "limit": limit,
        "top_k": TOP_K,
        "embedding_model": citeqa.embedder.name,
        "abstain_threshold": (settings.abstain_threshold if settings.abstain_threshold
                              is not None else citeqa.assistant.support.threshold),
        "as_of_question_date": as_of_question_date,
    }
    return EvalReport(summary=summarize(results), results=results, ingest=ingest, setup=setup,
                      calibration=calibration(results))


def _when(question: EvalQuestion, as_of_question_date: bool) -> dict[str, Any]:
    """How a question is asked in time: as of its own date, or (plain) with no time window."""
    if as_of_question_date and question.date is not None:
        return {"as_of": parse_day(question.date), "time_phrases": True}
    # A dev set's passages may be dated by when they were quizzed, not written: no windows.
    return {"time_phrases": False}
