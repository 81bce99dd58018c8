"""Stage 5 — abstention: say plainly that the articles do not answer, rather than guess.

`support` is the probability that the answer is right, read off what the answer stage found
(`Draft.evidence`: how close the quote is to the question, whether its context states the
question's names and numbers or contradicts them, how far it stands above the best quote of
another article...) by a logistic model fitted on the dev sets' tuning halves
(`qa/fitted/support.json`, `make train`). Below `CITEQA_ABSTAIN_THRESHOLD` the answer
abstains.
"""

from __future__ import annotations

from typing import Protocol

from qa.draft import Draft
from qa.linear import LinearModel

ABSTAIN_MESSAGE = (
    "The articles do not say. Nothing in this collection supports an answer to that question."
)


class SupportModel(Protocol):
    """Rates a draft answer: the probability (0-1) that it is right."""

    # The support below which to abstain when the settings name none.
    threshold: float

    def support(self, draft: Draft) -> float:
        """The probability that the draft answers the question rightly."""
        ...


class FittedSupport:
    """The logistic support model fitted by `make train` (the default), with its threshold."""

    def __init__(self, model: LinearModel | None = None) -> None:
        self.model = model or LinearModel.load("support")
        self.threshold = float(self.model.meta.get("threshold", 0.5))

    def support(self, draft: Draft) -> float:
        """The model's probability; 0 when nothing was found to quote."""
        if not draft.sentences:
            return 0.0
        return float(self.model.probabilities(self.model.matrix([draft.evidence]))[0])


def should_abstain(draft: Draft, support: float, *, threshold: float) -> bool:
    """True when no sentence was found or the support is below the threshold."""
    return not draft.sentences or support < threshold
