"""Stage 5b — the citation check of generated answers: every sentence must cite a passage that
supports it.

A generated sentence is supported by passage [n] when it means what one of the passage's
sentences says (embedding similarity, from the sentence vectors stored at ingestion), every
name, number and date it states appears in that passage, and it does not change what those
words say there: no negation the passage lacks (or lacks one it has), no role given to another
person, no number paired with what another number counts. Each kept citation points at the
exact span of the best-supporting sentence, not at the whole chunk.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from index.embedding import Embedder
from index.text import STOP_WORDS, search_tokens, sentence_spans
from qa.entities import is_organisation, proper_names
from qa.retrieve import Candidate

# Support = half the similarity to the passage's closest sentence (cosine, all-MiniLM-L6-v2),
# half the share of the sentence's content words found in the passage. A paraphrase of a
# passage sentence scores 0.7-0.9; an invented claim on the same topic 0.3-0.5.
SUPPORT_THRESHOLD = 0.55
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_YEAR_OR_MONTH = re.compile(
    r"\b(?:1[5-9]|20)\d{2}\b|\b(?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December)\b")
# Capitalised words that start sentences or are common in answers, not names to check.
_NOT_NAMES = {"The", "A", "An", "This", "That", "These", "Those", "It", "Its", "He", "She",
              "They", "In", "On", "At", "According", "However", "Yes", "No"}


@dataclass(frozen=True)
class CheckedSentence:
    """One generated sentence, what it cites, and whether the cited passage supports it."""

    text: str
    cited: tuple[int, ...]
    score: float
    supported: bool
    reason: str = ""
    # The best-supporting passage (1-based) and the span of its best sentence, when supported.
    passage: int | None = None
    start: int | None = None
    end: int | None = None
    # True when the checker, not the model, chose the passage (attribution mode).
    attributed: bool = False


@dataclass
class CheckResult:
    """Every sentence of a generated answer, checked."""

    sentences: list[CheckedSentence] = field(default_factory=list)

    @property
    def supported(self) -> list[CheckedSentence]:
        """The sentences that survive the check."""
        return [s for s in self.sentences if s.supported]

    @property
    def unsupported(self) -> list[CheckedSentence]:
        """The sentences that do not."""
        return [s for s in self.sentences if not s.supported]


def check_answer(
    generated: str,
    passages: Sequence[Candidate],
    *,
    embedder: Embedder,
    threshold: float = SUPPORT_THRESHOLD,
    attribute: bool = False,
) -> CheckResult:
    """Split a generated answer into sentences and check each against the passages it cites.

    `passages[n - 1]` is passage `[n]` of the prompt. Markers outside 1..len(passages) are
    ignored (the sentence then counts as citing nothing). With `attribute`, a sentence that
    cites nothing, or cites a passage that does not support it, is checked against every
    passage and cited to the one that supports it best (marked `attributed`); the check
    itself is the same.
    """
    pieces = [generated[s:e] for s, e in sentence_spans(generated)]
    cleaned = [_SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(_MARKER.sub(" ", piece).split()))
               for piece in pieces]
    vectors = embedder.embed_documents([c or "." for c in cleaned])
    result = CheckResult()
    for piece, text, vector in zip(pieces, cleaned, vectors, strict=True):
        if not text or not any(ch.isalnum() for ch in text):
            continue
        cited = tuple(n for n in _markers(piece) if 1 <= n <= len(passages))
        checked = (_best_support(text, np.asarray(vector), cited, passages, threshold)
                   if cited else CheckedSentence(text, (), 0.0, False, "cites no passage"))
        if attribute and not checked.supported:
            others = tuple(n for n in range(1, len(passages) + 1) if n not in cited)
            found = _best_support(text, np.asarray(vector), others, passages, threshold)
            if found.supported:
                checked = replace(found, cited=cited, attributed=True)
            elif not cited and found.reason:
                # Say why no passage could take it, not only that the model cited none.
                checked = replace(checked, score=found.score,
                                  reason=f"cites no passage, and none supports it: "
                                         f"{found.reason}")
        result.sentences.append(checked)
    return result


def _best_support(text: str, vector: np.ndarray, cited: tuple[int, ...],
                  passages: Sequence[Candidate], threshold: float) -> CheckedSentence:
    best: CheckedSentence | None = None
    for n in cited:
        record = passages[n - 1].record
        sentences = list(record.sentences)
        if not sentences:
            continue
        matrix = np.stack([s.vector for s in sentences])
        similarities = matrix @ vector
        index = int(np.argmax(similarities))
        words = set(search_tokens(text))
        passage_words = set(search_tokens(f"{record.document.title} {record.text}"))
        coverage = len(words & passage_words) / len(words) if words else 0.0
        score = 0.5 * float(similarities[index]) + 0.5 * coverage
        missing = missing_facts(text, f"{record.document.title} {record.text}")
        aligned = record.document.text[sentences[index].start:sentences[index].end]
        # A changed meaning is the most specific reason, so it is given first.
        changed = meaning_change(text, aligned, f"{record.document.title}\n{record.text}",
                                 f"passage [{n}]")
        supported = score >= threshold and not missing and changed is None
        reason = "" if supported else (
            changed if changed is not None
            else f"states {', '.join(missing)}, which passage [{n}] does not" if missing
            else f"passage [{n}] does not say this (support {score:.2f} < {threshold:.2f})")
        candidate = CheckedSentence(text, cited, round(score, 4), supported, reason, n,
                                    sentences[index].start, sentences[index].end)
        if best is None or (candidate.supported, candidate.score) > (best.supported,
                                                                     best.score):
            best = candidate
    return best or CheckedSentence(text, cited, 0.0, False, "the cited passages have no text")


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


def _markers(piece: str) -> list[int]:
    found: list[int] = []
    for group in _MARKER.findall(piece):
        found.extend(int(n) for n in re.split(r"\s*,\s*", group))
    return found


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


# --- Meaning changes ------------------------------------------------------------------------
# A sentence can keep its passage's words and still change what they say: negate the claim,
# give one person's role to another, pair a number with what another number counts. Each check
# below reads the passage sentence the generated sentence is aligned to (its most similar one)
# first and falls back to the whole passage, and returns a reason, or None when it sees no
# change. They compare words, not meanings: an antonym ("rose" for "fell") passes them.

# The checks read each passage once per generated sentence and cited passage: the pure
# helpers below cache what they derive from a text.
_CACHE = 1024


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
_DETERMINERS = {"a", "an", "the", "its", "their", "his", "her", "our", "your"}
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
        return f"{self.text} {self.counts}".strip()


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
