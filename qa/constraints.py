"""What a question pins down: the names, quantities and years an answer must agree with.

"How much money did Alibaba invest in the joint lab?" is not answered by a sentence about
another lab's €48 million, and "A 5.2-magnitude quake struck a Greek island. How many died?"
is not answered by a 7.3 quake elsewhere. The question's constraints are looked for in a
candidate sentence's context (the sentence, its neighbours, the title); a candidate that
states another number of the same kind contradicts the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from core.text import STOP_WORDS, search_tokens, words

_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3,
          "m": 1e6, "bn": 1e9}
_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
}
_CURRENCY = {"$": "dollar", "€": "euro", "£": "pound", "¥": "yen"}
# A number with what may surround it: a currency sign, a scale word, a hyphenated unit.
_QUANTITY = re.compile(
    r"(?P<currency>[$€£¥])?\s?(?P<number>(?<![A-Za-z]-)(?<![\w.,])\d+(?:[.,]\d+)*|\b(?:"
    + "|".join(_WORD_NUMBERS) + r")\b)"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|bn|k|m)\b)?"
    r"(?:\s?(?P<percent>%|percent\b|per cent\b))?"
    r"(?:-(?P<hyphen_unit>[a-z]+))?",
    re.I,
)
_YEAR = re.compile(r"^(?:1[5-9]|20)\d{2}$")
# Words that are capitalised in a question without being names.
_NOT_NAMES = frozenset(
    """what which who whom whose when where why how is are was were did do does will would
    can could should has have had the a an in on at of for to and or but if this that these
    those it its he she they his her their there i we you according after before during
    monday tuesday wednesday thursday friday saturday sunday""".split()  # noqa: SIM905
)
_NAME_RUN = re.compile(
    r"[A-Z][\w'’.\-]*(?:\s+(?:(?:de|van|der|den|von|da|di|del|du|le|la|al|bin|el|of|the|"
    r"and|y)\s+)*[A-Z][\w'’.\-]*)*"
)
_QUOTED = re.compile(r"[\"“‘']([^\"”’']{2,80})[\"”’']")


@dataclass(frozen=True)
class Quantity:
    """A number as stated, its value and the words that say what it counts."""

    text: str
    value: float
    units: frozenset[str]


@dataclass(frozen=True)
class Constraints:
    """The names, quantities and years a question states."""

    names: tuple[str, ...] = ()
    quantities: tuple[Quantity, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the question pins nothing down."""
        return not (self.names or self.quantities)


@dataclass(frozen=True)
class Agreement:
    """How a context agrees with a question's constraints (shares are 1.0 when none apply)."""

    names_found: float
    quantities_found: float
    contradicted: bool


def constraints_of(question: str) -> Constraints:
    """The names (capitalised runs, quoted titles, acronyms) and quantities a question states."""
    names: list[str] = []
    for match in _QUOTED.finditer(question):
        names.append(match.group(1).strip())
    for match in _NAME_RUN.finditer(question):
        name = _strip_name(match.group(), at_start=_at_sentence_start(question, match.start()))
        if name and name not in names:
            names.append(name)
    quantities = [q for q in quantities_in(question) if not _YEAR.match(q.text)]
    # Years are names: "the 2023 final" is looked for, not compared as a count.
    names += [q.text for q in quantities_in(question) if _YEAR.match(q.text)]
    return Constraints(tuple(dict.fromkeys(names)), tuple(quantities))


def quantities_in(text: str) -> list[Quantity]:
    """Every number in the text with its value and the words around it that name its kind."""
    return list(_quantities_in(text))


@lru_cache(maxsize=4096)
def _quantities_in(text: str) -> tuple[Quantity, ...]:
    found = []
    for match in _QUANTITY.finditer(text):
        number = match.group("number")
        value = _value(number)
        if value is None:
            continue
        scale = (match.group("scale") or "").lower()
        value *= _SCALE.get(scale, 1.0)
        units: set[str] = set()
        if match.group("currency"):
            units.add(_CURRENCY[match.group("currency")])
        if match.group("percent"):
            units.add("percent")
        if match.group("hyphen_unit"):
            units.add(_unit(match.group("hyphen_unit")))
        following = _next_word(text, match.end())
        if following and not match.group("hyphen_unit"):
            units.add(_unit(following))
        preceding = _previous_word(text, match.start())
        if preceding:
            units.add(_unit(preceding))
        found.append(Quantity(match.group().strip(), value, frozenset(units)))
    return tuple(found)


def agreement(constraints: Constraints, *parts: str) -> Agreement:
    """Which of the question's names and quantities the context (`parts` joined by spaces)
    states, and any contradiction.

    A name counts as found in proportion to its words found ("Damar Hamlin" is half found in
    a sentence naming only "Hamlin"). A quantity is contradicted when the context states a
    different value of the same kind (another magnitude, another sum of euros) and never the
    asked one.
    """
    if constraints.empty:
        return Agreement(1.0, 1.0, False)
    # No word spans the spaces that join the parts: each part is split once (and cached),
    # however many contexts it appears in.
    context_words = set().union(*map(words, parts)) if constraints.names else set()
    name_scores = []
    for name in constraints.names:
        name_words = [w for w in words(name) if w not in STOP_WORDS]
        if not name_words:
            continue
        name_scores.append(sum(w in context_words for w in name_words) / len(name_words))
    # A number's unit can be the next part's first word: quantities are read joined.
    stated = quantities_in(" ".join(parts)) if constraints.quantities else []
    found = 0
    contradicted = False
    for asked in constraints.quantities:
        same_kind = [q for q in stated if q.units & asked.units]
        if any(_same_value(q.value, asked.value) for q in stated):
            found += 1
        elif same_kind:
            contradicted = True
    return Agreement(
        names_found=sum(name_scores) / len(name_scores) if name_scores else 1.0,
        quantities_found=found / len(constraints.quantities) if constraints.quantities else 1.0,
        contradicted=contradicted,
    )


def _strip_name(run: str, *, at_start: bool) -> str | None:
    parts = run.split()
    # Leading question words and pronouns are capitalised only because they start a sentence.
    while parts and parts[0].lower().strip(".,") in _NOT_NAMES:
        parts.pop(0)
    while parts and parts[-1].lower().strip(".,") in _NOT_NAMES:
        parts.pop()
    if not parts:
        return None
    name = " ".join(parts).strip(".,;:’'")
    if at_start and len(parts) == 1 and run.split()[0] == parts[0] and not parts[0].isupper():
        # One capitalised word opening the question ("Hefei is...") may be an ordinary word.
        return None
    return name or None


def _at_sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in ".?!:\"“"


def _value(number: str) -> float | None:
    word = number.lower()
    if word in _WORD_NUMBERS:
        return float(_WORD_NUMBERS[word])
    cleaned = number.replace(",", "")
    if number.count(",") == 1 and "." not in number and len(number.split(",")[1]) != 3:
        cleaned = number.replace(",", ".")  # "5,2" as a decimal comma
    try:
        return float(cleaned)
    except ValueError:
        return None


def _same_value(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


@lru_cache(maxsize=4096)
def _unit(word: str) -> str:
    stems = search_tokens(word)
    return stems[0] if stems else word.lower()


def _next_word(text: str, at: int) -> str | None:
    match = re.match(r"\s*-?\s*([A-Za-z]+)", text[at:at + 40])
    if not match:
        return None
    word = match.group(1).lower()
    return None if word in STOP_WORDS else word


def _previous_word(text: str, at: int) -> str | None:
    match = re.search(r"([A-Za-z]+)[\s\-]*$", text[max(0, at - 40):at])
    if not match:
        return None
    word = match.group(1).lower()
    return None if word in STOP_WORDS else word
