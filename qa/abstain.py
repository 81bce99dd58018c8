"""Stage 5 — abstention: say plainly that the articles do not answer, rather than guess.

`support` is the probability that the answer is right, read off what the answer stage found
(`Draft.evidence`: how close the quote is to the question, whether its context states the
question's names and numbers or contradicts them, how far it stands above the best quote of
another article...) by a logistic model fitted on the dev sets' tuning halves
(`qa/fitted/support.json`, `make train`). Below `CITEQA_ABSTAIN_THRESHOLD` the answer
abstains.

When nothing at all was searched (an empty collection, filters no document passes) the
answer says that instead of "the articles do not say", which would be untrue: `why_nothing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.documents import Filters
from index.store import Coverage
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


@dataclass(frozen=True)
class Abstention:
    """Why an answer says nothing: a code for programs and a message for people."""

    reason: str
    message: str


NOT_SUPPORTED = Abstention("not_supported", ABSTAIN_MESSAGE)


def why_nothing(collection: str, coverage: Coverage, filters: Filters) -> Abstention | None:
    """The abstention when nothing could be searched: the collection is empty, or no document
    passes the filters. None when there were documents to search."""
    if coverage.documents == 0:
        return Abstention("empty_collection", (
            f"The collection \u201c{collection}\u201d has no articles yet, so there is nothing "
            "to answer from. Add articles to it first."))
    if coverage.matching == 0:
        message = (f"No article in \u201c{collection}\u201d matches the filters "
                   f"({describe_filters(filters)}), so nothing was searched. Widen or remove "
                   "the filters.")
        if coverage.undated_left_out:
            message += " " + undated_note(coverage.undated_left_out)
        return Abstention("no_matching_documents", message)
    return None


def undated_note(undated: int) -> str:
    """The note that a date range leaves undated articles out."""
    articles = "article has" if undated == 1 else "articles have"
    return (f"{undated:,} {articles} no date, and a date range leaves undated articles out.")


def describe_filters(filters: Filters) -> str:
    """The filters in words: "source Reuters; dated 2025-01-01 to 2025-01-31"."""
    parts = []
    if filters.sources:
        parts.append(f"source {', '.join(filters.sources)}")
    if filters.doc_ids:
        label = "document" if len(filters.doc_ids) == 1 else "documents"
        shown = ", ".join(filters.doc_ids[:5]) + (" ..." if len(filters.doc_ids) > 5 else "")
        parts.append(f"{label} {shown}")
    if filters.date_from and filters.date_to:
        parts.append(f"dated {filters.date_from} to {filters.date_to}")
    elif filters.date_from:
        parts.append(f"dated from {filters.date_from}")
    elif filters.date_to:
        parts.append(f"dated up to {filters.date_to}")
    if filters.as_of:
        parts.append(f"not dated after {filters.as_of}, the day it was asked as of")
    return "; ".join(parts)
