"""Numbers as sentences state them, with what they count, for the citation check.

`quantities` reads the numbers of a text (in digits or words, fractions, percentages, money),
each with the words after it that say what it counts and the word it follows. `number_conflict`
uses them to tell when a generated sentence pairs a number with something its passage counts
with another number ("20 researchers" where the passage has "20 scholarships"); the facts
check in `qa/conflicts.py` uses them to accept "5 years" for a passage's "five years".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from core.text import STOP_WORDS, search_tokens

# The checks read each passage once per generated sentence and cited passage: the pure
# helpers below (and those of `qa/conflicts.py`) cache what they derive from a text.
_CACHE = 1024
# Determiners, skipped after "of" in "two thirds of the money" (and by the role check).
_DETERMINERS = {"a", "an", "the", "its", "their", "his", "her", "our", "your"}

# --- Binding of numbers to what they count ----------------------------------------------------
_Q_TOKEN = re.compile(r"[$€£¥]|\d+(?:[.,]\d+)*|[A-Za-z]+(?:['’][A-Za-z]+)?|%|\S")
_SMALL = {w: n for n, w in enumerate([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen"])}
_TENS = {w: 10 * n for n, w in enumerate(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)}
_MAGNITUDES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9,
               "trillion": 1e12, "m": 1e6, "bn": 1e9}
_FRACTIONS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
              "fifth": 5, "fifths": 5, "tenth": 10, "tenths": 10}
_NUMBER_STARTS = {*_SMALL, *_TENS, "a", "an", "half", "halves"}
# "pounds" is left out: "5 pounds" is as often a weight.
_CURRENCIES = {"€": "euro", "euro": "euro", "euros": "euro", "$": "dollar", "dollar": "dollar",
               "dollars": "dollar", "£": "pound", "¥": "yen", "yen": "yen", "yuan": "yuan"}
_CURRENCY_SYMBOLS = {"€", "$", "£", "¥"}
_MONTH_WORDS = {"january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december", "jan", "feb", "mar", "apr",
                "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
_YEAR = re.compile(r"(?:1[5-9]|20)\d{2}")
# Words that may stand between a number and the word it belongs to ("fund of $60,000").
_GOVERNOR_LINKS = {"of", "with", "at", "for", "by", "a", "an", "the", "its", "their", "about",
                   "around", "nearly", "almost", "roughly", "approximately", "some", "just"}
# Words after a number that say where or when, not what it counts ("22 stops along the route").
_NOT_COUNTED = {"along", "across", "per", "ago", "around", "among", "including", "within",
                "towards", "toward", "beyond", "behind", "near", "despite", "each", "apiece"}
# Markers for what a number counts besides the words after it.
_SHARE, _MONEY = "<share>", "<money>"
_UNIT_WORDS = 2


@dataclass(frozen=True)
class Quantity:
    """A number as a sentence states it, with what it counts."""

    text: str  # as written: "€48 million", "two thirds", "60"
    value: float  # 48e6, 0.667, 60
    counts: str  # what it counts, as written: "researchers", "of the money"; "" if nothing
    units: frozenset[str]  # their stems, plus <money>/<share> markers
    currency: str | None = None
    spelled: bool = False  # written in words ("five")
    governor: str = ""  # the word it follows, as written: "cost" in "cost £612 million"

    @property
    def shown(self) -> str:
        """The number with what it counts, for reasons: "20 scholarships"."""
        # "five-year" is read as "five" counting "-year"; show it as written.
        joiner = "" if self.counts.startswith("-") else " "
        return f"{self.text}{joiner}{self.counts}".strip()


def number_conflict(sentence: str, aligned: str, passage: str, label: str) -> str | None:
    """Why the sentence pairs a number with something the passage counts with another number,
    or with a word ("cost", "receives") the passage puts before another number."""
    near, everywhere = _quantities(aligned), _quantities(passage)
    for ours in _quantities(sentence):
        reason = (_counted_conflict(ours, near, everywhere, label)
                  or _governor_conflict(ours, near, everywhere, label))
        if reason:
            return reason
    return None


def _counted_conflict(ours: Quantity, near: Sequence[Quantity], everywhere: Sequence[Quantity],
                      label: str) -> str | None:
    if not ours.units:
        return None
    same = [q for q in everywhere if _same_thing(q, ours) and _close(q.value, ours.value)]
    if any(not (q.currency and ours.currency and q.currency != ours.currency) for q in same):
        return None
    if same:  # the same amount in another currency
        return f"states {ours.shown}; {label} says {same[0].shown}"
    rivals = ([q for q in near if _same_thing(q, ours)]
              or [q for q in everywhere if _same_thing(q, ours)])
    if not rivals:
        return None  # the passage counts nothing like it; the facts check has the number
    owners = [q for q in [*near, *everywhere] if _close(q.value, ours.value) and q.counts]
    if owners and ours.counts:
        return (f"pairs {ours.text} with '{ours.counts}'; {label} pairs it with "
                f"'{owners[0].counts}' ({rivals[0].shown})")
    return f"states {ours.shown}; {label} says {rivals[0].shown}"


def _governor_conflict(ours: Quantity, near: Sequence[Quantity],
                       everywhere: Sequence[Quantity], label: str) -> str | None:
    """A number that says nothing of what it counts ("£410 million") is bound by the word
    before it: "cost £410 million" where the passage has "cost £612 million"."""
    if ours.counts or not ours.governor:
        return None
    stems = set(search_tokens(ours.governor))
    kinds = ours.units & {_SHARE, _MONEY}

    def governed(q: Quantity) -> bool:
        return bool(stems & set(search_tokens(q.governor))) and (
            not kinds or bool(kinds & q.units))

    if any(governed(q) and _close(q.value, ours.value) for q in everywhere):
        return None
    holders = [q for q in near if governed(q)] or [q for q in everywhere if governed(q)]
    if holders:
        return (f"pairs {ours.text} with '{ours.governor}'; {label} pairs "
                f"'{ours.governor}' with {holders[0].shown}")
    return None


def _same_thing(a: Quantity, b: Quantity) -> bool:
    """True if two quantities count the same thing: shared counted words, or, when one of them
    names none ("one third", "€5 million"), the same kind (a share, an amount of money)."""
    words_a, words_b = a.units - {_SHARE, _MONEY}, b.units - {_SHARE, _MONEY}
    if words_a and words_b:
        return bool(words_a & words_b)
    return bool(a.units & b.units & {_SHARE, _MONEY})


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def quantities(text: str) -> list[Quantity]:
    """The numbers a text states (digits or words, fractions, percentages, money), each with
    the words right after it, which say what it counts. Years and days of months are left out:
    the facts check covers dates."""
    return list(_quantities(text))


@lru_cache(maxsize=_CACHE)
def _quantities(text: str) -> tuple[Quantity, ...]:
    tokens = [(m.group(), m.start(), m.end()) for m in _Q_TOKEN.finditer(text)]
    found: list[Quantity] = []
    i = 0
    while i < len(tokens):
        first = tokens[i][0]
        # Most tokens cannot start a number: skip them cheaply.
        if not (first[0].isdigit() or first in _CURRENCY_SYMBOLS
                or first.lower() in _NUMBER_STARTS):
            i += 1
            continue
        parsed = _quantity_at(text, tokens, i)
        if parsed is None:
            i += 1
            continue
        quantity, i = parsed
        found.append(quantity)
    return tuple(found)


def _quantity_at(text: str, tokens: Sequence[tuple[str, int, int]], i: int
                 ) -> tuple[Quantity, int] | None:
    def word(k: int) -> str:
        return tokens[k][0].lower() if k < len(tokens) else ""

    start = tokens[i][1]
    currency = _CURRENCIES.get(word(i)) if word(i) in _CURRENCY_SYMBOLS else None
    j = i + 1 if currency else i
    number = _number_at(tokens, j)
    if number is None:
        return None
    value, j, spelled = number
    # "April 12" is a date; "COVID-19" a name.
    if not currency and (_is_date_number(tokens, i, j) or (i > 0 and word(i - 1) == "-")):
        return None
    units: set[str] = set()
    if word(j) == "-" and word(j + 1) in _FRACTIONS:
        j += 1
    if word(j) in _FRACTIONS and value == int(value) and 1 <= value <= 10:
        value /= _FRACTIONS[word(j)]
        units.add(_SHARE)
        j += 1
    # "€48m" only with a currency and no space: "100 m" is a distance.
    while word(j) in _MAGNITUDES and (len(word(j)) > 2 or (
            currency is not None and tokens[j][1] == tokens[j - 1][2])):
        value *= _MAGNITUDES[word(j)]
        j += 1
    if word(j) in ("%", "percent") or (word(j) == "per" and word(j + 1) == "cent"):
        value /= 100
        units.add(_SHARE)
        j += 2 if word(j) == "per" else 1
    if word(j) in _CURRENCIES and word(j).isalpha():
        currency = _CURRENCIES[word(j)]
        j += 1
    end = tokens[j - 1][2]
    if currency:
        units.add(_MONEY)
    counted: list[str] = []
    k = j
    if word(k) == "-" and word(k + 1).isalpha():
        # "a five-year plan": the unit is joined to the number.
        counted.append(tokens[k + 1][0])
        k += 2
    else:
        if _SHARE in units and word(k) == "of":
            k += 1 + (word(k + 1) in _DETERMINERS)
        while (len(counted) < _UNIT_WORDS and k < len(tokens) and tokens[k][0].isalpha()
               and tokens[k][0][0].islower() and len(tokens[k][0]) > 1
               and word(k) not in STOP_WORDS and word(k) not in _MAGNITUDES
               and word(k) not in _NOT_COUNTED
               and word(k) not in _SMALL and word(k) not in _TENS):
            counted.append(tokens[k][0])
            k += 1
            while word(k) == "-" and word(k + 1).isalpha():  # "water-bombing aircraft"
                counted[-1] += "-" + tokens[k + 1][0]
                k += 2
    for counted_word in counted:
        units.update(search_tokens(counted_word))
    counts = " ".join(text[end:tokens[k - 1][2]].split()) if counted else ""
    return Quantity(text=text[start:end], value=value, counts=counts, units=frozenset(units),
                    currency=currency, spelled=spelled, governor=_governor(tokens, i)
                    ), max(j, i + 1)


def _governor(tokens: Sequence[tuple[str, int, int]], i: int) -> str:
    """The content word a number follows, over prepositions that attach it ("fund of $60,000",
    "compared with 101") and hedges ("about 60"); "" if another word comes between."""
    k = i - 1
    while k >= 0 and i - k <= 3 and tokens[k][0].lower() in _GOVERNOR_LINKS:
        k -= 1
    if k < 0:
        return ""
    word = tokens[k][0]
    if (word.isalpha() and word[0].islower() and len(word) > 1
            and word.lower() not in STOP_WORDS and word.lower() not in _SMALL):
        return word
    return ""


def _number_at(tokens: Sequence[tuple[str, int, int]], i: int
               ) -> tuple[float, int, bool] | None:
    """The number starting at token i: (value, index after it, written in words)."""
    if i >= len(tokens):
        return None
    token = tokens[i][0].lower()
    following = tokens[i + 1][0].lower() if i + 1 < len(tokens) else ""
    if token[0].isdigit():
        if _YEAR.fullmatch(token):
            return None
        digits = _digits(token)
        return (digits, i + 1, False) if digits is not None else None
    if token in ("half", "halves"):
        return 1.0, i, True  # the fraction step reads it
    if token in ("a", "an", "one") and following in _FRACTIONS:
        return 1.0, i + 1, True
    if token in _SMALL:
        return float(_SMALL[token]), i + 1, True
    if token in _TENS:
        value, j = float(_TENS[token]), i + 1
        if following == "-" and i + 2 < len(tokens) and tokens[i + 2][0].lower() in _SMALL:
            value += _SMALL[tokens[i + 2][0].lower()]
            j = i + 3
        return value, j, True
    return None


def _is_date_number(tokens: Sequence[tuple[str, int, int]], start: int, end: int) -> bool:
    """A day of a month: "April 12", "12 April"."""
    before = tokens[start - 1][0].lower().rstrip(".") if start else ""
    after = tokens[end][0].lower() if end < len(tokens) else ""
    return before in _MONTH_WORDS or after in _MONTH_WORDS


def _digits(text: str) -> float | None:
    """A number written in digits: "1,200" is 1200, "4.5" and "4,5" are 4.5."""
    text = text.strip()
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None
