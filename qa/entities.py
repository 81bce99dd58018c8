"""Light, offline recognisers for the kinds of facts questions ask for (no model needed)."""

from __future__ import annotations

import re
from collections.abc import Callable

from core.text import search_tokens
from qa.question import AnswerType

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_DATE = re.compile(
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}\b|\b\d{{1,2}}\s+(?:{_MONTHS})\b|\b(?:{_MONTHS})\b\s+\d{{4}}|"
    r"\b(?:1[5-9]|20)\d{2}s?\b|\b\d{4}-\d{2}-\d{2}\b|"
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today|tomorrow)\b|"
    rf"\b(?:{_MONTHS})\b|\b(?:spring|summer|autumn|fall|winter)\b|\blast (?:week|month|year)\b"
)
_NUMBER = re.compile(
    r"[$€£¥]\s?\d|\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|fifteen|twenty|thirty|forty|fifty|sixty|hundred|thousand|million|billion|dozen|"
    r"half|third|quarter)\b|%|\bpercent\b",
    re.I,
)
_LENGTH = (r"kilomet|\bkm\b|metres?\b|meters?\b|miles?\b|feet\b|foot\b|\bft\b|yards?\b|"
           r"centimet|millimet|inch")
_DURATION = r"\b(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur)"
_MONEY = r"[$€£¥]|\b(?:dollars?|euros?|pounds?|yen|yuan|francs?|rupees?|million|billion|trillion)\b"
_UNITS = [
    (re.compile(r"\bhow (?:far|tall|high|deep|wide)\b", re.I), re.compile(_LENGTH, re.I)),
    (re.compile(r"\bhow long\b", re.I), re.compile(f"{_LENGTH}|{_DURATION}", re.I)),
    (re.compile(r"\bhow much (?:money|did|does|do|will|has|have|is|was)\b.*\b(?:cost|pay|paid|"
                r"raise|raised|spend|spent|worth|invest|fund|charge|earn|sell|sold|price)", re.I),
     re.compile(_MONEY, re.I)),
    (re.compile(r"\bhow much money\b|\bwhat (?:price|budget|salary|cost)\b", re.I),
     re.compile(_MONEY, re.I)),
]
_HOW_MANY = re.compile(r"\bhow many\s+(?:more\s+|of\s+the\s+)?([a-z][\w\-]+)", re.I)
_WORD = re.compile(r"[A-Za-z][\w\-]+")
_HOW_OLD = re.compile(r"\bhow old\b|\bwhat age\b|\bat what age\b", re.I)
# An age: "24-year-old", "24 years old", "aged 24", "Raman, 24, finished", "(24)".
_AGE = re.compile(r"\b\d{1,3}(?:-year-old|\s+years?\s+old)\b|\baged\s+\d{1,3}\b|"
                  r"[A-Z][\w'’\-]+,\s+\d{1,3},|\(\d{1,3}\)")
# A run of capitalised words (allowing particles: "Jan de Vries", "Bank of Esterland").
_PROPER = re.compile(
    r"\b(?:Dr|Prof|Mr|Mrs|Ms|Sir|Dame)?\.?\s?"
    r"[A-Z][\w'’\-]+(?:\s+(?:(?:de|van|der|den|von|da|di|du|del|le|la|al|bin|el|of(?: the)?)\s+)?"
    r"[A-Z][\w'’\-]+)+"
)
_SINGLE_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z][\w'’\-]+")
# "in Rotterdam", "from New Delhi", "the capital of Anhui"; a bare "of" introduces too many
# things that are not places ("dean of Computer Science") to count.
_PLACE_CUE = re.compile(
    r"(?:\b(?:in|at|from|near|to|outside|across|into|throughout)|"
    r"\b(?:city|capital|province|state|country|region|town|county|district|island) of)"
    r"\s+(?:the\s+)?([A-Z][\w'’\-]+(?:\s+[A-Z][\w'’\-]+)*)"
)
_ORG_WORDS = {
    "university", "college", "institute", "academy", "systems", "company", "corporation",
    "group", "bank", "ministry", "agency", "council", "committee", "foundation", "school",
    "faculty", "department", "ventures", "capital", "partners", "inc", "ltd", "labs", "lab",
    "laboratory", "museum", "association", "federation", "club", "society", "party", "fund",
    "authority", "commission", "office", "board", "trust", "robotics", "technologies",
    "holdings", "press", "times", "post", "news", "herald", "journal", "gazette",
}
_PERSON_CUES = re.compile(
    r"\b(?:Dr|Prof|Mr|Mrs|Ms|Sir|Dame)\.?\s|\b(?:dean|president|chief|director|minister|head|"
    r"chair|chairman|chairwoman|founder|co-founder|professor|scientist|officer|ceo|cto|cfo|"
    r"spokesperson|spokesman|spokeswoman|mayor|governor|manager|coach|captain|editor|author|"
    r"researcher|investigator|curator|leader|secretary|executive|said|says|told|explains|adds|"
    r"coached|champion|player|rider|winner|singer|actor|actress|artist|judge|lawyer|senator|"
    r"politician|writer|poet|composer|grandmaster|athlete|striker|goalkeeper|born|aged)\b",
    re.I,
)
# "coached by Ilse Brandvold", "Ilse Brandvold, a former champion": a name as agent or with
# an apposition is a person whatever the rest of the sentence says.
_AGENT = re.compile(r"\bby\s+$")
_APPOSITION = re.compile(r"^,\s+(?:a|an|the|who|aged|\d)")


# A quoted title ("Jaws", “The Rain”) or a camel-cased product name (iPhone, eBay).
_TITLE = re.compile(r"[\"“‘']([^\"”’']{2,80})[\"”’']|\b[a-z]+[A-Z][\w\-]*")


def proper_names(text: str) -> list[str]:
    """Runs of two or more capitalised words: people, places and organisations."""
    names = (m.group().strip() for m in _PROPER.finditer(text))
    # "The Bank of Esterland" is the Bank of Esterland; "The" alone is no name.
    return [name.removeprefix("The ") for name in names if name != "The"]


def has_answer_type(sentence: str, answer_type: AnswerType, question: str) -> bool:
    """True if the sentence holds a fact of the asked kind that the question does not name."""
    asked = question.lower()

    def new(found: str) -> bool:
        return found.lower() not in asked

    if answer_type is AnswerType.DATE:
        return any(new(m.group()) for m in _DATE.finditer(sentence))
    if answer_type is AnswerType.NUMBER:
        return _has_quantity(sentence, question, new)
    if answer_type is AnswerType.PLACE:
        return any(
            new(m.group(1)) and not _DATE.fullmatch(m.group(1).split()[0])
            and not is_organisation(m.group(1))
            for m in _PLACE_CUE.finditer(sentence)
        )
    if answer_type is AnswerType.ORGANISATION:
        return any(new(name) and is_organisation(name) for name in proper_names(sentence))
    if answer_type is AnswerType.NAME:
        names = proper_names(sentence) + [m.group() for m in _SINGLE_PROPER.finditer(sentence)]
        names += [m.group(1) or m.group() for m in _TITLE.finditer(sentence)]
        return any(new(name) for name in names)
    if answer_type is AnswerType.PERSON:
        names = [n for n in proper_names(sentence) if new(n)]
        # "Who cut the rate?" is answered by the bank that opens the sentence doing it.
        opening = sentence.lstrip("\"“ ").removeprefix("The ")
        if names and is_organisation(names[0]) and opening.startswith(names[0]):
            return True
        people = [n for n in names if not is_organisation(n)]
        if not people:
            return False
        if _PERSON_CUES.search(sentence) or len(people) > 1:
            return True
        at = sentence.find(people[0])
        return bool(_AGENT.search(sentence[:at])
                    or _APPOSITION.match(sentence[at + len(people[0]):]))
    return False


def _has_quantity(sentence: str, question: str, new: Callable[[str], bool]) -> bool:
    """A number of the asked kind: an age for "how old", a length for "how long"..."""
    if _HOW_OLD.search(question):
        return any(new(m.group()) for m in _AGE.finditer(sentence))
    numbers = [m for m in _NUMBER.finditer(sentence) if new(m.group())]
    if not numbers:
        return False
    for pattern, units in _UNITS:
        if pattern.search(question):
            return bool(units.search(sentence))
    counted = _HOW_MANY.search(question)
    if counted:
        # "How many volunteers...?": a number right before the counted word, if the sentence
        # mentions that word at all; a sentence that never mentions it may still count them.
        stem = _stem(counted.group(1))
        mentions = [m for m in _WORD.finditer(sentence) if _stem(m.group()) == stem]
        if mentions:
            return any(sentence[max(0, m.start() - 40):m.start()].strip()
                       and _NUMBER.search(sentence[max(0, m.start() - 40):m.start()])
                       for m in mentions)
    return True


def is_organisation(name: str) -> bool:
    """True if the name reads as an organisation (University, Systems, Group...)."""
    return any(word.lower().strip(".,") in _ORG_WORDS for word in name.split())


def _stem(word: str) -> str:
    tokens = search_tokens(word)
    return tokens[0] if tokens else word.lower()
