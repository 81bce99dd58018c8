"""Stage 3 — reranking the fused candidates. A cross-encoder can be plugged in here."""

from __future__ import annotations

from typing import Protocol

from qa.question import Question
from qa.retrieve import Candidate


class Reranker(Protocol):
    """Reorders candidates, setting each one's `score`; best first."""

    def rerank(self, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates, best first."""
        ...


class FusionOrder:
    """Keeps the order of reciprocal rank fusion (the default)."""

    def rerank(self, question: Question, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates by fused score."""
        for candidate in candidates:
            candidate.score = candidate.fused
        return sorted(candidates, key=lambda c: c.score, reverse=True)
