"""Stage 4 — answer extraction: pick the sentences of the top passages that answer the question.

A sentence answers a question when it means the same thing (embedding similarity), shares the
question's specific words, and holds a fact of the asked kind (a person for "who", a date for
"when"...) that the question does not already name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from index.embedding import Embedder
from index.text import search_tokens, sentence_spans
from qa.entities import has_answer_type
from qa.question import AnswerType, Question
from qa.retrieve import Candidate

# (candidate, start, end, rank of the candidate, stored sentence vector or None)
_Span = tuple[Candidate, int, int, int, "np.ndarray | None"]


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer: an exact span of a retrieved document."""

    candidate: Candidate
    start: int
    end: int
    score: float
    similarity: float
    overlap: float
    specific: float
    typed: bool

    @property
    def text(self) -> str:
        """The sentence, exactly as it stands in its document."""
        return self.candidate.record.document.text[self.start:self.end]


@dataclass(frozen=True)
class Draft:
    """The chosen sentences and how strongly the passages support answering at all."""

    sentences: list[AnswerSentence]
    support: float


# A further sentence joins the answer only if it scores this close to the best one.
SECOND_SENTENCE_RATIO = 0.8
# A sentence holding the asked kind of fact replaces a better-scoring one without, if it
# scores this close: closer for names, whose recogniser is looser than those of quantities.
RUNNER_UP_RATIO = {AnswerType.NUMBER: 0.6, AnswerType.DATE: 0.6, AnswerType.NAME: 0.8,
                   AnswerType.PERSON: 0.8}
# Questions whose answer is a number, a date or a title are not answered by a sentence
# without one; the recognisers of these kinds are reliable enough to abstain on.
_CHECKED_TYPES = (AnswerType.NUMBER, AnswerType.DATE, AnswerType.NAME)


def support_of(best: AnswerSentence, answer_type: AnswerType,
               in_passage: tuple[float, float] | None = None) -> float:
    """How strongly the best sentence supports answering at all (compared with a threshold).

    `in_passage` is (share, rarity-weighted share) of the question's words found in the
    passage holding the sentence; without it, in the sentence. Weights chosen on RealTimeQA
    and SciFact, with answerable, near-miss and unrelated questions
    (bench/calibrate_abstention.py).
    """
    if answer_type in _CHECKED_TYPES and not best.typed:
        return 0.0
    overlap, specific = in_passage or (best.overlap, best.specific)
    return 0.55 * best.similarity + 0.15 * overlap + 0.15 * specific


class Answerer(Protocol):
    """Turns ranked candidates into answer sentences with their spans."""

    def answer(self, question: Question, candidates: list[Candidate],
               query_vector: np.ndarray) -> Draft:
        """The answer sentences, best first, and the support score for abstention."""
        ...


class ExtractiveAnswerer:
    """Answers with sentences quoted from the passages; needs no LLM."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        passages: int = 10,
        max_sentences: int = 2,
        max_candidates: int = 100,
    ) -> None:
        if passages < 1 or max_sentences < 1 or max_candidates < 1:
            raise ValueError(
                f"passages ({passages}), max_sentences ({max_sentences}) and max_candidates "
                f"({max_candidates}) must all be positive"
            )
        self.embedder = embedder
        self.passages = passages
        self.max_sentences = max_sentences
        self.max_candidates = max_candidates

    def answer(self, question: Question, candidates: list[Candidate],
               query_vector: np.ndarray) -> Draft:
        """The best sentences of the top passages, best first."""
        spans = self._candidate_sentences(candidates[: self.passages])
        if not spans:
            return Draft([], 0.0)
        texts = [c.record.document.text[s:e] for c, s, e, _, _ in spans]
        similarities = self._similarities(spans, texts, query_vector)
        asked = set(question.tokens)
        sentence_tokens = [set(search_tokens(text)) for text in texts]
        # Words rare in the collection (names, terms) say which sentence answers; words in
        # every article say little. Without collection weights, rarity among the candidates.
        weights = question.weights or _local_idf(asked, sentence_tokens)
        total_weight = sum(weights.get(token, 0.0) for token in asked)
        scored = []
        for (candidate, start, end, rank, _), text, tokens, similarity in zip(
            spans, texts, sentence_tokens, similarities, strict=True
        ):
            coverage = len(asked & tokens) / len(asked) if asked else 0.0
            specific = (sum(weights.get(t, 0.0) for t in tokens & asked) / total_weight
                        if total_weight else 0.0)
            typed = question.answer_type is not AnswerType.OTHER and has_answer_type(
                text, question.answer_type, question.text
            )
            score = (
                0.55 * float(similarity)
                + 0.35 * specific
                + (0.10 if typed else 0.0)
                + 0.05 / (1 + rank)
                - _form_penalty(text)
            )
            scored.append(AnswerSentence(candidate, start, end, score, float(similarity),
                                         coverage, specific, typed))
        scored.sort(key=lambda s: s.score, reverse=True)
        if question.answer_type in RUNNER_UP_RATIO and not scored[0].typed:
            # "How many ...?" is not answered by a sentence without a number, nor "who...?" by
            # one without a person: take a close runner-up that has one. (For numbers, dates
            # and titles, the support check then abstains if there is none.)
            ratio = RUNNER_UP_RATIO[question.answer_type]
            runners_up = [s for s in scored if s.typed and s.score >= ratio * scored[0].score]
            if runners_up:
                scored.remove(runners_up[0])
                scored.insert(0, runners_up[0])
        best = scored[0]
        chosen = [best]
        for sentence in scored[1:]:
            if len(chosen) >= self.max_sentences:
                break
            if sentence.score < SECOND_SENTENCE_RATIO * best.score:
                break
            if question.answer_type is not AnswerType.OTHER and not sentence.typed:
                continue
            chosen.append(sentence)
        # The question's words are looked for in the whole passage around the best sentence:
        # "How much did the tram line cost?" is answered by "The project cost £612 million",
        # in a passage that names the tram line.
        record = best.candidate.record
        passage = set(search_tokens(f"{record.document.title} {record.text}"))
        in_passage = (len(asked & passage) / len(asked) if asked else 0.0,
                      sum(weights.get(t, 0.0) for t in passage & asked) / total_weight
                      if total_weight else 0.0)
        return Draft(chosen, support_of(best, question.answer_type, in_passage))

    def _similarities(self, spans: list[_Span], texts: list[str],
                      query_vector: np.ndarray) -> np.ndarray:
        query = np.asarray(query_vector, dtype=np.float32)
        stored = [vector for *_, vector in spans if vector is not None]
        if len(stored) == len(spans):
            vectors = np.stack(stored)
        else:
            # Stored without sentence vectors (another store): embed them now.
            vectors = self.embedder.embed_documents(texts)
        return vectors @ query

    def _candidate_sentences(self, candidates: list[Candidate]) -> list[_Span]:
        seen: set[tuple[str, int]] = set()
        out: list[_Span] = []
        for rank, candidate in enumerate(candidates):
            record = candidate.record
            stored = [(s.start, s.end, s.vector) for s in record.sentences] or [
                (start, end, None)
                for start, end in sentence_spans(record.document.text, record.start, record.end)
            ]
            for start, end, vector in stored:
                key = (record.document.id, start)
                if key in seen:
                    continue
                seen.add(key)
                out.append((candidate, start, end, rank, vector))
                if len(out) >= self.max_candidates:
                    return out
        return out


def _local_idf(asked: set[str], sentence_tokens: list[set[str]]) -> dict[str, float]:
    """Inverse frequency of each question word among the candidate sentences."""
    count = len(sentence_tokens)
    weights = {}
    for token in asked:
        frequency = sum(token in tokens for tokens in sentence_tokens)
        if frequency:
            weights[token] = math.log(1 + count / frequency)
    return weights


def _form_penalty(sentence: str) -> float:
    """Headings, fragments and run-ons make poor answers."""
    words = len(sentence.split())
    penalty = 0.0
    stripped = sentence.rstrip("\"'”’)] ")
    fragment = words < 10 and not stripped.endswith((".", "!", "?", ":"))
    if sentence.lstrip().startswith("#") or words < 4 or fragment:
        penalty += 0.15
    if words > 70:
        penalty += 0.05
    return penalty
