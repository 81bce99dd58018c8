"""Stage 1 — the question: validated, normalised, and classified by the kind of answer it wants."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from index.errors import InvalidInput, TooLarge
from index.text import search_tokens


class AnswerType(StrEnum):
    """The kind of fact a question asks for."""

    PERSON = "person"
    DATE = "date"
    PLACE = "place"
    NUMBER = "number"
    ORGANISATION = "organisation"
    NAME = "name"  # the name of a work, product, law...: "which film", "which app"
    OTHER = "other"


_TYPE_PATTERNS: list[tuple[AnswerType, re.Pattern[str]]] = [
    (AnswerType.NUMBER, re.compile(
        r"\bhow (many|much|long|far|old|large|big|high|tall|deep|fast|often)\b|"
        r"\bwhat (percentage|percent|share|proportion|number|amount|sum|price|rate|score)\b|"
        r"\b(number|amount) of\b|\b(what|which) (depth|height|length|distance|size|"
        r"temperature|speed|age|weight|cost|altitude|margin|budget|salary|population|area|"
        r"capacity|value|total)\b", re.I)),
    (AnswerType.DATE, re.compile(
        r"^\s*when\b|\bwhen (did|does|do|will|was|is|were)\b|"
        r"\b(what|which) (year|date|day|month|time|decade|century)\b|\bsince when\b", re.I)),
    (AnswerType.PLACE, re.compile(
        r"^\s*where\b|\bwhere (is|are|was|were|did|does|do|will)\b|"
        r"\b(what|which|in which|in what) (city|country|town|region|state|province|place|"
        r"continent|island|county|capital|location|venue|street|district)\b", re.I)),
    (AnswerType.ORGANISATION, re.compile(
        r"\b(what|which) (company|firm|organi[sz]ation|university|team|club|party|agency|"
        r"group|bank|institution|newspaper|outlet|startup|investor)\b", re.I)),
    (AnswerType.NAME, re.compile(
        r"\b(what|which) (programming language|language|software|app|application|product|"
        r"brand|device|film|movie|book|novel|show|series|song|album|video game|game|ship|award|"
        r"prize|festival|law|bill|treaty|vaccine|platform|website|channel|network|airline|"
        r"operating system|play|painting|opera|musical|podcast|newspaper|magazine|car model)s?\b",
        re.I)),
    (AnswerType.PERSON, re.compile(
        r"^\s*(who|whom|whose)\b|\b(who|whom|whose) (is|was|are|were|did|does|do|will|has|"
        r"had|leads?|co-leads?|heads?|runs?|won|wins|founded|chairs?)\b|"
        r"\b(what|which) (person|people|man|woman|player|scientist|official|minister|"
        r"president|leader|director|chief|ceo|founder|author|researcher|singer|actor)\b|"
        r"\bname of the (person|man|woman|leader|director|chief)\b", re.I)),
]


@dataclass(frozen=True)
class Question:
    """A question ready for retrieval: its text, search tokens and expected answer type."""

    text: str
    tokens: list[str]
    answer_type: AnswerType
    # How specific each token is in the collection asked (BM25 idf); empty until known.
    weights: dict[str, float] = field(default_factory=dict)

    def weighted(self, weights: dict[str, float]) -> Question:
        """The same question with its tokens' weights in the collection being asked."""
        return replace(self, weights=dict(weights))


def prepare_question(text: str, *, max_chars: int) -> Question:
    """Validate and classify a question; empty or over-long questions are refused clearly."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the question is empty; ask something about your articles",
                           code="empty_question")
    cleaned = " ".join(text.split())
    if len(cleaned) > max_chars:
        raise TooLarge(
            f"the question is {len(cleaned):,} characters long; the limit is {max_chars:,} "
            "(CITEQA_MAX_QUESTION_CHARS)",
            code="question_too_long",
        )
    return Question(text=cleaned, tokens=search_tokens(cleaned, question=True),
                    answer_type=answer_type_of(cleaned))


def answer_type_of(question: str) -> AnswerType:
    """The kind of fact the question asks for, from its question words."""
    for answer_type, pattern in _TYPE_PATTERNS:
        if pattern.search(question):
            return answer_type
    return AnswerType.OTHER
