"""Stage 5 — abstention: say plainly that the articles do not answer, rather than guess."""

from __future__ import annotations

from qa.extract import Draft

ABSTAIN_MESSAGE = (
    "The articles do not say. Nothing in this collection supports an answer to that question."
)


def should_abstain(draft: Draft, *, threshold: float) -> bool:
    """True when no sentence was found or the best support is below the threshold."""
    return not draft.sentences or draft.support < threshold
