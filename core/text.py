"""Text utilities shared by indexing and answering: sentence spans and search tokens."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

# Words that end with a period but do not end a sentence.
_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc", "ltd", "co", "corp", "no", "vs",
    "etc", "e.g", "i.e", "u.s", "u.k", "gen", "gov", "sen", "rep", "rev", "fig", "approx", "dept",
    "univ", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "mt", "ft", "al", "a.m", "p.m",
}
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_LINE_BREAK = re.compile(r"\n\s*")
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom whose why will with would you your yours yourself
    yourselves also did does according said says tell told
    """.split()  # noqa: SIM905
)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences in `text[start:end]`, trimmed of surrounding space."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line_start, line_end in _line_spans(text, start, end):
        cursor = line_start
        for match in _SENTENCE_END.finditer(text, line_start, line_end):
            if _is_abbreviation(text, cursor, match.start()) or _continues(text, match.end(),
                                                                            line_end):
                continue
            spans.append((cursor, match.end()))
            cursor = match.end()
        spans.append((cursor, line_end))
    return [trimmed for s, e in spans if (trimmed := _trim(text, s, e))[1] > trimmed[0]]


def _line_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    cursor = start
    for match in _LINE_BREAK.finditer(text, start, end):
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    return spans


def _continues(text: str, at: int, line_end: int) -> bool:
    """A lower-case word after the punctuation means the sentence goes on ("3 p.m. on")."""
    while at < line_end and text[at].isspace():
        at += 1
    return at < line_end and text[at].islower()


def _is_abbreviation(text: str, sentence_start: int, period_at: int) -> bool:
    if text[period_at] != ".":
        return False
    word_start = period_at
    while word_start > sentence_start and (text[word_start - 1].isalpha() or
                                           text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:period_at].lower()
    if not word:
        return False
    # A single capital letter is an initial ("J. Smith"), unless it is the whole sentence.
    return word in _ABBREVIATIONS or (len(word) == 1 and period_at - sentence_start > 2)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased, hyphenated words kept whole and also split."""
    return list(_words(text))


# Answering a question reads each sentence several times (alone, beside its neighbours, for
# its names and its numbers): the same texts, split once.
@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    lowered = text.lower()
    # The same words as matching first and normalising each match (the pattern treats both
    # apostrophes alike), in one C call rather than a Python step per word.
    if "’" in lowered:
        lowered = lowered.replace("’", "'")
    found: list[str] = _WORD.findall(lowered)
    if "'s" in lowered:
        found = [word[:-2] if word.endswith("'s") else word for word in found]
    if "-" not in lowered:
        return tuple(found)
    out: list[str] = []
    for word in found:
        out.append(word)
        if "-" in word:
            out.extend(part for part in word.split("-") if part)
    return tuple(out)


# Words that shape a question rather than say what it is about ("what kind of business",
# "which of the following"): dropped from questions only, never from the articles.
QUESTION_WORDS = frozenset(
    """
    kind kinds type types sort sorts name named called call many much following exactly
    happened happen
    """.split()  # noqa: SIM905
)


# The version of search_tokens (words, stop words, stemming): the catalog stores each chunk's
# tokens with the version that made them and re-tokenises on open when it differs. Bump it with
# every change to what search_tokens returns, or stored tokens silently stop matching queries.
ANALYSER_VERSION = 1


def search_tokens(text: str, *, question: bool = False) -> list[str]:
    """Stemmed content words, the tokens of the lexical index and of lexical overlap.

    With `question`, question-shaping words are dropped too.
    """
    return list(_search_tokens(text, question))


@lru_cache(maxsize=4096)
def _search_tokens(text: str, question: bool) -> tuple[str, ...]:
    drop = STOP_WORDS | QUESTION_WORDS if question else STOP_WORDS
    return tuple(_stemmer().stemWords([w for w in _words(text) if w not in drop]))



def chunk_tokens(title: str, chunk_text: str) -> list[str]:
    """A chunk's tokens for the lexical index: its document's title, then its own text (at
    ingestion, and when a new analyser re-tokenises a data folder)."""
    return search_tokens(f"{title} {chunk_text}")
