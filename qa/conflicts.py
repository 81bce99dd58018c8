"""What a generated sentence states that its cited passage does not say (used by `qa/check.py`).

The facts check: every name, number and date the sentence states must appear in the passage.
The meaning changes: a sentence that keeps its passage's words can still negate the claim
(polarity), give one person's role to another (roles), or pair a number with what another
number counts (`number_conflict`, in `qa/quantities.py`). Each recogniser returns a reason,
or None when it sees no change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from core.text import STOP_WORDS, search_tokens, sentence_spans
from qa.entities import is_organisation, proper_names
from qa.quantities import _CACHE, _DETERMINERS, _digits, _quantities, number_conflict

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_YEAR_OR_MONTH = re.compile(
    r"\b(?:1[5-9]|20)\d{2}\b|\b(?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December)\b")
# Capitalised words that start sentences or are common in answers, not names to check.
_NOT_NAMES = {"The", "A", "An", "This", "That", "These", "Those", "It", "Its", "He", "She",
              "They", "In", "On", "At", "According", "However", "Yes", "No"}


def missing_facts(sentence: str, passage: str) -> list[str]:
    """The names, numbers and dates the sentence states that the passage does not contain."""
    haystack = _normalise(passage)
    facts = set(_NUMBER.findall(sentence)) | set(_YEAR_OR_MONTH.findall(sentence))
    for name in proper_names(sentence):
        words = [w for w in name.split() if w.strip(".") not in _NOT_NAMES]
        facts.update(w.strip(".,;:") for w in words if len(w.strip(".,;:")) > 1)
    # "5 years" restates "five years": a number the passage spells out is there too.
    spelled = {q.value for q in _quantities(passage) if q.spelled}
    missing = []
    for fact in sorted(facts):
        if _normalise(fact) not in haystack and _normalise(fact.replace(",", "")) not in \
                haystack.replace(",", "") and _digits(fact) not in spelled:
            missing.append(fact)
    return missing


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


# --- Meaning changes ------------------------------------------------------------------------
# A sentence can keep its passage's words and still change what they say: negate the claim,
# give one person's role to another, pair a number with what another number counts. Each check
# below reads the passage sentence the generated sentence is aligned to (its most similar one)
# first and falls back to the whole passage, and returns a reason, or None when it sees no
# change. They compare words, not meanings: an antonym ("rose" for "fell") passes them.
# The pure helpers below cache what they derive from a text (`_CACHE`, in `qa/quantities.py`).


def meaning_change(sentence: str, aligned: str, passage: str, label: str) -> str | None:
    """Why the sentence changes what `label` (its aligned sentence, in `passage`) says, or None."""
    return (polarity_conflict(sentence, aligned, passage, label)
            or role_conflict(sentence, aligned, passage, label)
            or number_conflict(sentence, aligned, passage, label))


# Negation cues. "no longer" before "no" so the cue reads whole; "fails to", "declined to" and
# "unable to" only with "to" ("sales declined" negates nothing).
_NEGATION = re.compile(
    r"\b(?:not|never|no\s+longer|no|none|nobody|nothing|nowhere|neither|nor|cannot|without|"
    r"(?:fail(?:s|ed)?|declin(?:e|es|ed)|unable)\s+to|den(?:y|ies|ied)|refus(?:e|es|ed))\b"
    r"|n['’]t\b", re.IGNORECASE)
# Cue words that do not negate what follows: "not only", "no more than 20", "will not start
# until April" (it still happens, in April), "No. 5".
_NOT_NEGATION = re.compile(
    r"\bnot\s+(?:only|just|merely|least)\b|(?:\bnot|n['’]t)\s+(?:\w+\s+){0,2}?(?:until|before)\b"
    r"|\bno\s+(?:less|fewer|more|later|sooner|doubt)\b|\bnothing\s+but\b|\bno\.\s*\d",
    re.IGNORECASE)
# Where one clause ends and the next begins: a negation belongs to its clause ("Corvalis may
# license the patents, but the university will not sell them").
_CLAUSE_BREAK = re.compile(
    r"\s*[;:]\s*|,?\s+(?:but|while|whereas|although|though)\s+|,\s+(?:and|which)\s+|\s+[–—]\s+",
    re.IGNORECASE)
# A negation's scope: the few content words after the cue, within its phrase.
_SCOPE_END = re.compile(r"[,;:.!?()]")
_SCOPE_WORDS = 4
# A clause restates a passage clause when it shares at least half its content words with it.
_CLAUSE_OVERLAP = 0.5


def polarity_conflict(sentence: str, aligned: str, passage: str, label: str) -> str | None:
    """Why the sentence negates what the passage clause it restates affirms, or the reverse."""
    passage_clauses = _passage_clauses(passage)
    for clause in _clauses(sentence):
        words = _content(clause)
        if not words:
            continue
        match = (_closest_clause(words, _clauses(aligned))
                 or _closest_clause(words, passage_clauses))
        if match is None:
            continue
        ours, theirs = _negations(clause), _negations(match)
        if ours and not theirs:
            # Only a negation of words the passage clause states ("..., not in 2027" is
            # another matter, left to the facts check), and that no other clause of the
            # passage negates too (the aligned clause is the closest, not always the source).
            hit = next((m for m in ours if _scope(clause, m) & _content(match)), None)
            if hit and not any(len(_scope(c, m) & _scope(clause, hit)) >= min(
                    2, len(_scope(clause, hit))) for c in passage_clauses for m in _negations(c)):
                return f'negates what {label} says ("{_cue(hit)}")'
        if theirs and not ours:
            hit = next((m for m in theirs if _scope(match, m) & words), None)
            # ...unless a clause as close to it says those words without a negation.
            about = _scope(match, hit) & words if hit else set()
            if hit and not any(about <= _content(c) and _dice(words, c) >= _dice(words, match)
                               for c in passage_clauses if not _negations(c)):
                return f'affirms what {label} negates ("{_cue(hit)}")'
    return None


@lru_cache(maxsize=_CACHE)
def _clauses(text: str) -> tuple[str, ...]:
    return tuple(c for c in _CLAUSE_BREAK.split(text) if c and c.strip())


@lru_cache(maxsize=_CACHE)
def _passage_clauses(passage: str) -> tuple[str, ...]:
    return tuple(c for s, e in sentence_spans(passage) for c in _clauses(passage[s:e]))


@lru_cache(maxsize=_CACHE)
def _content(text: str) -> frozenset[str]:
    """Stemmed content words with the negation cues left out, so that a clause and its
    negation share all their words."""
    return frozenset(search_tokens(_NEGATION.sub(" ", text)))


def _closest_clause(words: frozenset[str], clauses: Iterable[str]) -> str | None:
    """The clause sharing the most words with `words` (Dice), if it shares at least half of
    the shorter one's, and two words unless one side has only one."""
    best, best_dice = None, 0.0
    for clause in clauses:
        theirs = _content(clause)
        shared = len(words & theirs)
        if not shared or shared < min(2, len(words), len(theirs)) or \
                shared / min(len(words), len(theirs)) < _CLAUSE_OVERLAP:
            continue
        if (dice := _dice(words, clause)) > best_dice:
            best, best_dice = clause, dice
    return best


def _dice(words: frozenset[str], clause: str) -> float:
    theirs = _content(clause)
    return 2 * len(words & theirs) / (len(words) + len(theirs)) if theirs else 0.0


def _negations(text: str) -> list[re.Match[str]]:
    spared = [m.span() for m in _NOT_NEGATION.finditer(text)]
    return [m for m in _NEGATION.finditer(text)
            if not any(start <= m.start() < end for start, end in spared)]


def _scope(text: str, cue: re.Match[str]) -> frozenset[str]:
    rest = text[cue.end():]
    stop = _SCOPE_END.search(rest)
    return frozenset(search_tokens(_NEGATION.sub(" ", rest[:stop.start()] if stop else rest))
                     [:_SCOPE_WORDS])


def _cue(match: re.Match[str]) -> str:
    """The cue as written; "n't" with its verb ("won't")."""
    if match.group().lower().startswith("n"):
        start = match.start()
        while start > 0 and match.string[start - 1].isalpha():
            start -= 1
        return " ".join(match.string[start:match.end()].split())
    return " ".join(match.group().split())


# --- Binding of people to roles ---------------------------------------------------------------
_TITLES = {"dr", "prof", "mr", "mrs", "ms", "sir", "dame"}
# A capitalised run after these is a place or an organisation ("the Faculty of Computer
# Science", "in New Delhi"), not a person.
_BEFORE_NON_PERSON = {"of", "in", "at", "from", "to", "the", "near", "into", "across", "for",
                      "on", "a", "an"}
# What gives a person a role after the name: an apposition ("Okafor, dean of ...") or a
# copula ("Verhoeven is chief scientist of ...").
_ROLE_INTRO = re.compile(
    r"\s*,\s*(?:who\s+(?:is|was|has\s+been|had\s+been|serves\s+as|served\s+as|became|"
    r"remains)\s+)?|\s+(?:is|was|has\s+been|had\s+been|serves\s+as|served\s+as|became|remains|"
    r"will\s+be|would\s+be)\s+")
_ROLE_END = re.compile(r"[,;:.!?()\"“”]|\s(?:and|or|but|while|who|which|where|when|that)\b")
_ROLE_TOKENS = 12
_HEAD_WORDS = 3
_WORD_RE = re.compile(r"[A-Za-z][\w'’\-]*")
_PREMODIFIERS = re.compile(r"((?:\b[a-z][\w'’\-]*\s+){1,3})$")
_COORDINATION = re.compile(r"\s*(?:,|and|&|,\s*and|or|,\s*or)\s*")


@dataclass(frozen=True)
class _Mention:
    """A person named in a text: surname key, surname as written, span of the mention."""

    key: str
    shown: str
    start: int
    end: int


def role_conflict(sentence: str, aligned: str, passage: str, label: str) -> str | None:
    """Why the sentence gives a role the passage gives one person to another person, or None."""
    known = _surnames(sentence) | _surnames(passage)
    people = _people(sentence, known)
    for mention in people:
        for stem, word in _roles(sentence, mention, people).items():
            holders = _holders(aligned, stem, known) or _holders(passage, stem, known)
            if holders and mention.key not in holders and \
                    mention.key not in _holders(passage, stem, known):
                return (f"binds '{word}' to {mention.shown}; {label} binds it to "
                        f"{' and '.join(sorted(holders.values()))}")
    return None


@lru_cache(maxsize=_CACHE)
def _person_names(text: str) -> tuple[tuple[str, int, int], ...]:
    """Multi-word names that read as people: (surname, start, end)."""
    found: list[tuple[str, int, int]] = []
    cursor = 0
    for name in proper_names(text):
        start = text.find(name, cursor)
        if start < 0:
            continue
        cursor = start + len(name)
        before = text[:start].split()[-1:]
        words = [w for w in name.split() if w.rstrip(".").lower() not in _TITLES]
        if (len(words) < 2 or is_organisation(name) or words[0] in _NOT_NAMES
                or _YEAR_OR_MONTH.fullmatch(words[0])
                or (before and before[0].lower() in _BEFORE_NON_PERSON)):
            continue
        found.append((_surname(words[-1]), start, cursor))
    return tuple(found)


def _surname(word: str) -> str:
    return re.sub(r"['’]s$", "", word.strip(".,;:"))


def _surnames(text: str) -> frozenset[str]:
    return frozenset(name.lower() for name, _, _ in _person_names(text))


@lru_cache(maxsize=_CACHE)
def _people(text: str, known: frozenset[str]) -> tuple[_Mention, ...]:
    """Every mention of a known person: full names, and surnames on their own ("Okafor said")."""
    mentions = [_Mention(name.lower(), name, start, end)
                for name, start, end in _person_names(text)]
    for match in _WORD_RE.finditer(text):
        name = _surname(match.group())
        if (name.lower() in known and name[:1].isupper()
                and not any(m.start <= match.start() < m.end for m in mentions)):
            mentions.append(_Mention(name.lower(), name, match.start(), match.end()))
    return tuple(sorted(mentions, key=lambda m: m.start))


@lru_cache(maxsize=_CACHE)
def _roles(text: str, mention: _Mention, people: tuple[_Mention, ...]) -> Mapping[str, str]:
    """The role words of a person: the head of its apposition or copula ("dean", "chief
    scientist"), the capitalised words of its affiliation there, and the lower-case words right
    before the name ("chief scientist Tomas Verhoeven"). Stem -> word as written."""
    roles: dict[str, str] = {}
    intro = _ROLE_INTRO.match(text, mention.end)
    if intro:
        after = min((m.start for m in people if m.start >= intro.end()), default=len(text))
        window = text[intro.end():after]
        end = _ROLE_END.search(window)
        tokens = _WORD_RE.findall(window[:end.start()] if end else window)[:_ROLE_TOKENS]
        # An apposition starts with a determiner or a noun phrase; "Okafor, and ...",
        # "Okafor, who joined ...", "..., is dean" (the sentence going on) are none.
        if tokens and tokens[0].lower() in STOP_WORDS - _DETERMINERS:
            tokens = []
        head = tokens
        while head and head[0].lower() in _DETERMINERS:
            head = head[1:]
        words: list[str] = []
        for token in head[:_HEAD_WORDS]:
            if not token[0].islower() or token.lower() in STOP_WORDS:
                break
            words.append(token)
        _add_role(roles, words)
        for token in tokens:
            if token[0].isupper() and token not in _NOT_NAMES and \
                    token.rstrip(".").lower() not in _TITLES:
                _add_role(roles, [token])
    before = _PREMODIFIERS.search(text[:mention.start])
    if before:
        words = []
        for token in reversed(before.group(1).split()):
            if token.lower() in STOP_WORDS:
                break
            words.insert(0, token)
        _add_role(roles, words)
    return roles


def _add_role(roles: dict[str, str], words: Sequence[str]) -> None:
    """Each word's stems, shown in reasons as the whole phrase ("chief scientist")."""
    for word in words:
        for stem in search_tokens(word):
            roles.setdefault(stem, " ".join(words))


def _holders(text: str, stem: str, known: frozenset[str]) -> dict[str, str]:
    """The people `text` gives the role word `stem` to: key -> surname as written."""
    people = _people(text, known)
    # People listed together share what is said of the list: "Okafor and Verhoeven,
    # co-directors of ...", "former presidents Clinton, Obama and Bush".
    groups: list[list[_Mention]] = []
    for i, mention in enumerate(people):
        if i and _COORDINATION.fullmatch(text[people[i - 1].end:mention.start]):
            groups[-1].append(mention)
        else:
            groups.append([mention])
    holders: dict[str, str] = {}
    for group in groups:
        if any(stem in _roles(text, mention, people) for mention in group):
            holders.update((mention.key, mention.shown) for mention in group)
    return holders


