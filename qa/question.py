"""Stage 1 — the question: validated, normalised, and classified by the kind of answer it wants."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from core.errors import InvalidInput, TooLarge
from core.text import STOP_WORDS, search_tokens
from qa.constraints import Constraints, constraints_of
from qa.timeframe import TimeWindow, time_window, today


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
    """A question ready for retrieval: its text, search tokens, answer type and constraints."""

    text: str
    tokens: list[str]
    answer_type: AnswerType
    # The names and quantities an answer must agree with ("the 5.2-magnitude quake").
    constraints: Constraints = field(default_factory=Constraints)
    # Stemmed words of what is asked for, as opposed to what the question is about:
    # "aftershock" in "How many aftershocks followed the quake?", "depth" in "How deep...?".
    focus: tuple[str, ...] = ()
    # How specific each token is in the collection asked (BM25 idf); empty until known.
    weights: dict[str, float] = field(default_factory=dict)
    # The day it is asked as of (documents dated later are not used), and the time window
    # its time phrase names relative to that day ("this week", "in March"), if any.
    as_of: date = field(default_factory=today)
    window: TimeWindow | None = None

    def weighted(self, weights: dict[str, float]) -> Question:
        """The same question with its tokens' weights in the collection being asked."""
        return replace(self, weights=dict(weights))


def prepare_question(text: str, *, max_chars: int,
                     idf: Callable[[list[str]], dict[str, float]] | None = None,
                     as_of: date | None = None) -> Question:
    """Validate and classify a question; empty or over-long questions are refused clearly.
    With `idf` (a collection's), its words are weighted by their rarity there. It is asked
    as of `as_of` (None: today, UTC), and its time phrase read relative to that day."""
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
    tokens = search_tokens(cleaned, question=True)
    as_of = as_of or today()
    return Question(text=cleaned, tokens=tokens, answer_type=answer_type_of(cleaned),
                    constraints=constraints_of(cleaned), focus=tuple(question_focus(cleaned)),
                    weights=dict(idf(tokens)) if idf is not None else {}, as_of=as_of,
                    window=time_window(cleaned, as_of))


def answer_type_of(question: str) -> AnswerType:
    """The kind of fact the question asks for, from its question words."""
    for answer_type, pattern in _TYPE_PATTERNS:
        if pattern.search(question):
            return answer_type
    return AnswerType.OTHER


_WH_PHRASE = re.compile(r"\b(?:which|what|how many|how much|whose)\s+", re.I)
_NOT_FOCUS = frozenset({"kind", "type", "sort", "name", "of", "more", "other"})
# "How deep" asks for a depth: the noun a text states it with.
_DIMENSIONS = {
    "deep": "depth", "high": "height", "tall": "height", "long": "length", "far": "distance",
    "old": "age", "big": "size", "large": "size", "heavy": "weight", "fast": "speed",
    "wide": "width", "often": "frequency",
}
_LAST_WORD = re.compile(r"([\w\-’']+)(?:\s+(?:on|in|at|for|to|with|about|from|of|up|out))?"
                        r"\s*\?*\s*$")
_OWNED = re.compile(r"(?:['’]s|\bthe)\s+([a-z][\w\-]+)(?:\s+(?:of|at|in|for)\b|\s*\?|\s*$)")
_HOW_ADJECTIVE = re.compile(r"\bhow (" + "|".join(_DIMENSIONS) + r")\b", re.I)
# "Who designed...?" asks for whoever did the verb; "Who is the president of...?" for the role.
_WHO = re.compile(r"\bwho(?:m)?\s+(?:(?:is|was|are|were|will be|has been)\s+(?:the\s+|a\s+|an\s+)?"
                  r"(?:new\s+|current\s+|former\s+)?)?([a-z][\w\-]*)", re.I)


def question_focus(question: str) -> list[str]:
    """The stemmed words of what the question asks for ("seismologist" in "Which
    seismologist said...", "depth" in "How deep was the quake?"), not of its topic."""
    dimension = _HOW_ADJECTIVE.search(question)
    if dimension:
        adjective = dimension.group(1).lower()
        return search_tokens(f"{adjective} {_DIMENSIONS[adjective]}")
    match = _WH_PHRASE.search(question)
    if match and re.match(r"(?:is|was|are|were|will|would|does|do|did|has|have|can|could)\b",
                          question[match.end():], re.I):
        # "What is Zhou Jingren's position...?", "What was the capital of...?": the noun
        # that is owned.
        owned = _OWNED.search(question, match.end())
        if owned and owned.group(1).lower() not in STOP_WORDS | _NOT_FOCUS:
            return search_tokens(owned.group(1))
        # "What will the lab study?", "What does the other lab focus on?": the verb at the end.
        last = _LAST_WORD.search(question)
        word = last.group(1) if last else ""
        if word.isalpha() and not word[0].isupper() and word.lower() not in STOP_WORDS:
            return search_tokens(word)
        return []
    if not match:
        who = _WHO.search(question)
        if who and who.group(1).lower() not in STOP_WORDS:
            return search_tokens(who.group(1))
        return []
    focus: list[str] = []
    for word in re.findall(r"[\w\-’']+", question[match.end():])[:4]:
        lowered = word.lower()
        if lowered == "of" and not focus:
            continue  # "what kind of business": the business
        # The phrase ends at the verb or preposition that starts the rest of the question.
        if lowered in STOP_WORDS or (focus and lowered.endswith(("ed", "ing"))):
            break
        if lowered not in _NOT_FOCUS:
            focus.extend(search_tokens(word))
    return focus
