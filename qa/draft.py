"""Stage 4's output, whichever answerer wrote it: the quotes of an answer, each an exact span
of a retrieved document, and what the support model reads about them.

Both answerers return a `Draft`: the extractive one (`extract.py`) quotes sentences as they
stand; the generating one (`generate.py`, LLM mode) words its own sentences, each checked
against the span it cites. Abstaining (`abstain.py`) and citing (`cite.py`) read only this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from core.documents import Document
from qa.answer import UnsupportedSentence
from qa.followup import Turn
from qa.question import Question
from qa.retrieve import Candidate

TokenCallback = Callable[[str], None]
"""Receives a generated answer's text as the model writes it (LLM mode)."""

Mode = Literal["extractive", "llm", "llm-extractive", "llm-fallback"]


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer and the exact span of a retrieved document it rests on."""

    candidate: Candidate
    start: int
    end: int
    score: float
    features: Mapping[str, float] = field(default_factory=dict)
    # "According to <title>" when the answer quotes more than one article.
    label: str | None = None
    # LLM mode: the sentence as the model wrote it (None: the quote itself is the sentence),
    # and whether the check, not the model, chose the passage.
    wording: str | None = None
    attributed: bool = False

    @property
    def text(self) -> str:
        """The quote, exactly as it stands in its document."""
        return self.candidate.record.document.text[self.start:self.end]

    @property
    def document(self) -> Document:
        """The document quoted."""
        return self.candidate.record.document


@dataclass(frozen=True)
class Draft:
    """The chosen sentences, and what the support model reads about how well they answer."""

    sentences: list[AnswerSentence]
    evidence: Mapping[str, float] = field(default_factory=dict)
    mode: Mode = "extractive"
    # LLM mode: the generated sentences the check rejected; those kept in the text, marked
    # (CITEQA_UNSUPPORTED=flag), as (how many cited sentences come before it, its text); and
    # the support the check measured itself (None: the support model rates the draft).
    rejected: Sequence[UnsupportedSentence] = ()
    flagged: Sequence[tuple[int, str]] = ()
    support: float | None = None


class Answerer(Protocol):
    """Turns ranked candidates into an answer whose every sentence has its span."""

    def answer(self, question: Question, candidates: list[Candidate],
               query_vector: np.ndarray, *, history: Sequence[Turn] = (),
               on_token: TokenCallback | None = None) -> Draft:
        """The answer's sentences, best first, and the evidence the support model reads."""
        ...
