"""What a sentence of any text claims, judged against one aligned article sentence (for
`qa/verify.py`).

`not_checkable_reason` tells sentences that state no checkable fact (questions, greetings,
the writer's own view, hedges, fragments). `judge` compares a claim with the article sentence
it is closest to and the passage around it, reusing the citation check's recognisers
(`qa/conflicts.py`, `qa/quantities.py`) and adding one: another name, number or date standing
where the article has its own (a swapped fact).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from core.text import STOP_WORDS, search_tokens
from qa.conflicts import meaning_change, missing_facts
from qa.entities import is_organisation, proper_names

# Support = half the similarity to the closest article sentence (cosine), half the share of
# the claim's content words found in its passage, as in the citation check (qa/check.py),
# but stricter: a verdict on someone else's text is read as a finding.
SUPPORT_THRESHOLD = 0.7
# Below this similarity the article sentence is about something else: it can neither support
# nor contradict.
RELATED = 0.55
# A swapped fact needs the rest of the claim to restate the article sentence.
_SAME_CLAIM_WORDS = 0.6
_RESTATED_TO_CONTRADICT = 0.4

_QUOTED = re.compile(r"“[^”]*”?|\"[^\"]*\"?")
_QUESTION = re.compile(r"\?[\"'’”)\]]*$")
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|greetings|thanks|thank you|good (?:morning|afternoon|evening)|"
    r"cheers|regards|best wishes|kind regards|sure|of course|certainly|great question|"
    r"you're welcome|welcome|bye|goodbye|hope this helps)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I’m|I've|I’ve|I'd|I’d|me|my|myself)\b")
_HEDGE = re.compile(
    r"\b(?:in my (?:view|opinion)|perhaps|maybe|probably|possibly|arguably|presumably|"
    r"it seems|seems to|apparently|supposedly|might|may well)\b", re.IGNORECASE)
_OPINION = re.compile(
    r"\b(?:amazing|awesome|wonderful|terrible|awful|fantastic|brilliant|beautiful|boring|"
    r"exciting|disappointing|impressive|ugly|lovely|horrible|overrated|underrated|great|"
    r"should|ought)\b", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[\w'’]+")
_POSSESSIVE = re.compile(r"['’]s?$")
# Capitalised words, acronyms (NATO) and brand names in camel case (iPod, eBay).
_CAPITALISED = re.compile(r"(?<![\w-])(?:[A-Z][a-z][\w'’]*|[A-Z]{2,}\b|[a-z]+[A-Z]\w*)")
_NOT_NAMES = {"The", "A", "An", "This", "That", "These", "Those", "It", "Its", "He", "She",
              "They", "In", "On", "At", "According", "However", "Dr", "Mr", "Mrs", "Ms",
              "Prof"}
_MIN_WORDS = 3
# A replaced phrase longer than this is a rewording of the sentence, not one fact swapped.
_SWAP_WORDS = 4
# Words on each side of a replaced phrase that give it its meaning, for `qa/verify.py`.
_CONTEXT_WORDS = 5
_TOKEN = re.compile(r"[\w'’-]+")
_FACT_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_FACT_DATE = re.compile(
    r"\b(?:1[5-9]|20)\d{2}\b|\b(?:January|February|March|April|May|June|July|August|"
    r"September|October|November|December)\b")


def not_checkable_reason(sentence: str) -> str | None:
    """Why the sentence states no fact an article could confirm, or None if it does."""
    stripped = sentence.strip()
    if _QUESTION.search(stripped):
        return "a question"
    if _GREETING.match(stripped):
        return "a greeting or courtesy"
    # Words quoted from someone else are reported, not the writer's view or hedge.
    own = _QUOTED.sub(" ", stripped)
    if _FIRST_PERSON.search(own):
        return "the writer's own view or experience"
    if _HEDGE.search(own):
        return "hedged: it does not assert a fact"
    if _OPINION.search(own) and not _states_facts(stripped):
        return "an opinion"
    if len(search_tokens(stripped)) < _MIN_WORDS:
        return "too short to state a fact"
    return None


def _states_facts(sentence: str) -> bool:
    # A name after the first word, or a number: something an article could confirm.
    return bool(_DIGIT.search(sentence)) or any(
        sentence.find(name) > 0 for name in proper_names(sentence))


@dataclass(frozen=True)
class Judgement:
    """A claim against one aligned article sentence."""

    similarity: float
    score: float  # support: similarity and word coverage together
    supports: bool
    contradiction: str | None  # why the sentence says otherwise, if it does
    shortfall: str  # why it does not support the claim (empty if it does)

    @property
    def confidence(self) -> float:
        """How sure a contradiction is: how closely the claim restates the sentence."""
        return round(min(1.0, max(0.0, self.similarity)), 4)


def judge(claim: str, aligned: str, passage: str, similarity: float, *, title: str = ""
          ) -> Judgement:
    """The claim against its aligned article sentence, that sentence's passage and its
    article's title. Its names, numbers and dates must be in the sentence or the title: a name
    found only elsewhere in the passage is often the answer to another question."""
    words = set(search_tokens(claim))
    passage_words = set(search_tokens(passage))
    coverage = len(words & passage_words) / len(words) if words else 0.0
    score = round(0.5 * similarity + 0.5 * coverage, 4)
    restated = (len(words & set(search_tokens(aligned))) / len(words) if words else 0.0)
    if similarity < RELATED and restated < _SAME_CLAIM_WORDS:
        return Judgement(similarity, score, False, None,
                         f"no article sentence says this (closest similarity {similarity:.2f})")
    missing = unstated_facts(claim, f"{title}\n{aligned}")
    # Only a sentence restating much of the claim can contradict it: one sharing a word or
    # two with it is about something else.
    changed = ((meaning_change(claim, aligned, passage, "the article")
                or _swapped_fact(claim, aligned, missing))
               if restated >= _RESTATED_TO_CONTRADICT else None)
    supports = score >= SUPPORT_THRESHOLD and not missing and changed is None
    shortfall = ("" if supports
                 else f"states {', '.join(missing)}, which the closest article sentence "
                      "does not" if missing
                 else f"the article does not say this (support {score:.2f} < "
                      f"{SUPPORT_THRESHOLD:.2f})")
    return Judgement(similarity, score, supports, changed, shortfall)


def unstated_facts(claim: str, evidence: str) -> list[str]:
    """The names, numbers and dates of the claim the evidence does not state: the citation
    check's facts, plus single capitalised words ("Lyon", "NATO", a name opening the
    sentence), each matched as a whole word ("Rat" is not in "celebrations")."""
    missing = missing_facts(claim, evidence)
    present = {_POSSESSIVE.sub("", w.strip("'’")).casefold()
               for w in _WORD.findall(unicodedata.normalize("NFKC", evidence))}
    for word in _single_names(claim):
        if word not in missing and word.casefold() not in present:
            missing.append(word)
    return missing


def _single_names(sentence: str) -> list[str]:
    # The first word is capitalised as a sentence start: a name only if not a common word.
    return [word for m in _CAPITALISED.finditer(sentence)
            if (word := _POSSESSIVE.sub("", m.group()).strip(".,;:'’"))
            and not _FACT_DATE.fullmatch(word)
            and word not in _NOT_NAMES
            and (m.start() > 0 or word.casefold() not in STOP_WORDS)]


def _swapped_fact(claim: str, aligned: str, missing: list[str]) -> str | None:
    """Why the claim puts another name, number or date where the article sentence has its
    own, the rest of the claim restating that sentence; None if it does not."""
    if not missing:
        return None
    claim_words = set(search_tokens(claim))
    missing_words = set(search_tokens(" ".join(missing)))
    rest = claim_words - missing_words
    if not rest or len(rest & set(search_tokens(aligned))) / len(rest) < _SAME_CLAIM_WORDS:
        return None
    lowered_claim = claim.casefold()
    for fact in missing:
        kind = _kind(fact)
        if kind == "number" and _in_code(claim, fact):
            continue
        shown = _name_holding(claim, fact) if kind == "name" else fact
        others = (_other_names(claim, fact, aligned) if kind == "name"
                  else [f for f in _facts(aligned, kind) if f.casefold() not in lowered_claim])
        # Only a fact standing where the article's stands: "based in Paris" for "based in
        # Lyon", "Nino Kavtaradze won" for "Priya Raman won".
        theirs = next((o for o in others if _same_slot(claim, shown, aligned, o)), None)
        if theirs:
            # The article's sentence itself is the evidence, quoted beside the reason.
            return f'says "{shown}" where the article says "{theirs}"'
    return None


def _same_slot(claim: str, ours: str, aligned: str, theirs: str) -> bool:
    """Whether the two facts share the word before or the word after them."""
    before, after = _neighbours(claim, ours)
    their_before, their_after = _neighbours(aligned, theirs)
    return bool((before and before == their_before) or (after and after == their_after))


def _neighbours(text: str, fact: str) -> tuple[str, str]:
    at = text.find(fact)
    if at < 0:
        return "", ""
    before = _WORD.findall(text[:at])
    after = _WORD.findall(text[at + len(fact):])
    return (before[-1].casefold() if before else "", after[0].casefold() if after else "")


def _kind(fact: str) -> str:
    if _FACT_DATE.fullmatch(fact):
        return "date"
    if _FACT_NUMBER.fullmatch(fact):
        return "number"
    return "name"


def _facts(sentence: str, kind: str) -> list[str]:
    if kind == "date":
        return _FACT_DATE.findall(sentence)
    return [n for n in _FACT_NUMBER.findall(sentence) if not _FACT_DATE.fullmatch(n)]


def _name_holding(claim: str, fact: str) -> str:
    return next((name for name in proper_names(claim) if fact in name.split()), fact)


def _in_code(claim: str, fact: str) -> bool:
    """Whether the number is part of a code or name ("HB-417"), not a figure."""
    return re.search(rf"[A-Za-z][-/]?{re.escape(fact)}\b", claim) is not None


def _other_names(claim: str, fact: str, aligned: str) -> list[str]:
    """The names of the aligned sentence of the same sort as the claim's name holding `fact`
    (a person for a person, an organisation for an organisation) that the claim lacks."""
    ours = _name_holding(claim, fact)
    claim_words = {w.strip(".,;:").casefold() for w in claim.split()}
    names = proper_names(aligned) + _single_names(aligned)
    return [name for name in names
            if is_organisation(name) == is_organisation(ours)
            and not {w.strip(".,;:").casefold() for w in name.split()} & claim_words
            and not _FACT_DATE.fullmatch(name)]


@dataclass(frozen=True)
class WordSwap:
    """A phrase of the claim standing where the article sentence has another, the rest of
    the claim restating that sentence."""

    ours: str
    theirs: str
    # The claim's words around the phrase, with the claim's phrase and with the article's.
    in_context: str
    theirs_in_context: str


def word_swaps(claim: str, aligned: str, passage: str) -> list[WordSwap]:
    """The claim's phrases (a few words each) that replace a phrase of the aligned sentence,
    hold a content word the passage never uses, and drop one of the sentence's that the claim
    lacks: "Shiba Inu fish" where the article has "dog". A synonym is one too ("firm" for
    "company"); telling them apart needs their meaning (`qa/verify.py`)."""
    ours = list(_TOKEN.finditer(claim))
    theirs = list(_TOKEN.finditer(aligned))
    matcher = difflib.SequenceMatcher(None, [m.group().casefold() for m in ours],
                                      [m.group().casefold() for m in theirs], autojunk=False)
    restated = sum(block.size for block in matcher.get_matching_blocks())
    if not ours or restated / len(ours) < _SAME_CLAIM_WORDS:
        return []
    passage_words, claim_words = set(search_tokens(passage)), set(search_tokens(claim))
    swaps = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace" or i2 - i1 > _SWAP_WORDS or j2 - j1 > _SWAP_WORDS:
            continue
        start, end = ours[i1].start(), ours[i2 - 1].end()
        their_phrase = aligned[theirs[j1].start():theirs[j2 - 1].end()]
        new = [w for w in search_tokens(claim[start:end]) if w not in passage_words]
        dropped = [w for w in search_tokens(their_phrase) if w not in claim_words]
        if new and dropped:
            left = ours[max(0, i1 - _CONTEXT_WORDS)].start()
            right = ours[min(len(ours), i2 + _CONTEXT_WORDS) - 1].end()
            swaps.append(WordSwap(
                claim[start:end], their_phrase, claim[left:right],
                claim[left:start] + their_phrase + claim[end:right]))
    return swaps
