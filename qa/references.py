"""Resolving the references of a follow-up question against the previous turn.

`_Context` holds what the previous turn makes available (from `qa/mentions.py`) and replaces
"the other one", "the latter", "the second lab", "the other co-leader" (ordinals and "other"
over the previous answer's people, or the named things of its article) and then he/she/his/her
and it/its/they/there by what they stand for, noting when a reference could not be resolved.
`qa/followup.py` decides when to use it and checks the rewrite it gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from core.text import words
from qa.answer import MARKER
from qa.mentions import (
    _answered_thing,
    _kind_of,
    _kind_pattern,
    _subject_name,
    _with_determiner,
    named_things,
    people_in,
    quoted_sentences,
    things_of_kind,
    topic_of,
)

_ORDINALS = {
    "first": 0, "former": 0, "second": 1, "third": 2, "fourth": 3, "latter": -1, "last": -1,
}
# "the second one", "the latter", "the other lab", "the first company", "the other one".
_REFERENCE = re.compile(
    r"\bthe (other|first|second|third|fourth|former|latter|last)\b"
    r"(?:\s+(one|person|of them|of the two|[a-z][\w\-]*))?", re.I)
_PRONOUN_LIKE = {"one", "person", "of them", "of the two"}
# Words after "the latter"/"the other" that show it stands alone ("what does the latter do").
_FUNCTION_WORDS = frozenset(
    """
    is are was were am be been do does did will would can could should shall may might must
    has have had and or but of in at on for to with from by about as than that who which
    whose whom also still now then
    """.split()  # noqa: SIM905
)
# "the other co-leader": another person of the previous answer, not another thing.
_PERSON_NOUNS = frozenset(
    """
    person man woman co-leader leader co-founder founder member partner scientist researcher
    author rider player winner candidate director executive official speaker
    """.split()  # noqa: SIM905
)
_PERSON_PRONOUN = re.compile(r"\b(he|she|him|his|her|hers)\b", re.I)
_THING_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|there)\b", re.I)
# "Is there ...?", "there are": existential "there", not a place.
_EXISTENTIAL_BEFORE = re.compile(r"\b(?:is|are|was|were|be|been)\s+$", re.I)
_PREPOSITION_BEFORE = re.compile(r"\b(?:in|at|on|from|to|into|near|around|inside|outside|"
                                 r"over|up|out|of)\s+$", re.I)
_EXISTENTIAL_AFTER = re.compile(r"^\s*(?:is|are|was|were|will|has|have|had|'s|’s)\b", re.I)
_NAME_WORDS_IGNORED = frozenset({"the", "a", "an", "of", "for", "and", "de", "van", "von"})

# The text of the previous answer's article, or a function that finds it when asked (only
# called when a reference needs it: "the other lab", "the latter").
ArticleSource = str | Callable[[], str | None] | None


class _Context:
    """What the previous turn makes available to resolve references with."""

    def __init__(self, previous_question: str, previous_answer: str,
                 article: ArticleSource) -> None:
        self.previous_question = previous_question
        self.answer = re.sub(r"\s*" + MARKER.pattern, "", previous_answer)
        self.quotes = quoted_sentences(previous_answer)
        self.names = people_in(self.answer)
        self.pair = next((people for people in map(people_in, self.quotes) if len(people) > 1),
                         self.names)
        self.topic = topic_of(previous_question)
        self.subject = _subject_name(previous_question) if self.topic is None else None
        self.thing = _answered_thing(previous_question, self.answer)
        self._article_source = article
        self._article: str | None = None
        self._article_known = False
        self.reset()

    def reset(self) -> None:
        self.person: str | None = None
        self.picked_thing: str | None = None
        self.unresolved = False

    @property
    def article(self) -> str | None:
        """The previous answer's article, looked up once, when first needed."""
        if not self._article_known:
            source = self._article_source
            self._article = source() if callable(source) else source
            self._article_known = True
        return self._article

    # References: "the other lab", "the latter", "the second one" ----------------------------

    def resolve_references(self, text: str) -> str:
        return _REFERENCE.sub(self._reference, text)

    def _reference(self, match: re.Match[str]) -> str:
        word = match.group(1).lower()
        follower = match.group(2)
        lowered = follower.lower() if follower else None
        # What follows the reference when the follower is not part of it ("the latter do").
        tail = match.group()[match.end(1) - match.start():]
        if lowered in _PRONOUN_LIKE:
            tail = ""
        elif lowered is not None and lowered not in _FUNCTION_WORDS:
            # "the other lab", "the second company": a thing of that kind, by name.
            named = self._thing(word, lowered)
            if named is not None:
                return named
            if word == "other" and lowered in _PERSON_NOUNS:
                person = self._other_person()
                if person is not None:
                    return person
            if word not in {"former", "latter"}:
                # "the first time", "the second half": not references; "the other lab" with
                # no other lab in sight cannot be resolved.
                self.unresolved = self.unresolved or word == "other"
                return match.group()
        if word == "other":
            # "the other one": the other person of the previous answer, else the other thing
            # of the kind the previous question was about.
            person = self._other_person()
            if person is not None:
                return person + tail
            kind = self.topic.split()[-1] if self.topic else None
            named = self._thing(word, kind) if kind else None
            if named is not None:
                return named + tail
            self.unresolved = True
            return match.group()
        index = _ORDINALS[word]
        # "the latter" of "co-led by A and B [1] C, a partner, ... [2]" is B: the last of the
        # first sentence naming two or more people.
        people = self.pair if word in {"former", "latter"} else self.names
        if people and index < len(people):
            self.person = people[index]
            return self.person + tail
        named = self._ordinal_thing(index)
        if named is not None:
            return named + tail
        if word in {"former", "latter"} or lowered in _PRONOUN_LIKE:
            self.unresolved = True
        return match.group()

    def _other_person(self) -> str | None:
        """Of two or more people in the previous answer, the first one not asked about."""
        if len(self.pair) < 2:
            return None
        asked = self.previous_question.lower()
        focus = next((name for name in self.pair
                      if name.lower() in asked or name.split()[-1].lower() in asked),
                     self.pair[0])
        self.person = next(name for name in self.pair if name != focus)
        return self.person

    def _thing(self, word: str, noun: str) -> str | None:
        """"the other lab" / "the second lab": a named lab of the article (or answer)."""
        kind = _kind_of(noun)
        source = self.article or self.answer
        things = things_of_kind(source, kind)
        if len(things) < 2:
            return None
        if word == "other":
            focus = self._focus(things, kind, source)
            chosen = next(thing for thing in things if thing != focus)
        else:
            index = _ORDINALS[word]
            if index >= len(things):
                return None
            chosen = things[index]
        self.picked_thing = _with_determiner(chosen, source)
        return self.picked_thing

    def _ordinal_thing(self, index: int) -> str | None:
        """"the latter" when the previous answer names no people: the things it names, or
        the things of the previous topic's kind in its article."""
        named = [name for name in named_things(self.answer)
                 if name.lower() not in self.previous_question.lower()
                 and name.lstrip(". ") not in self.names]
        if len(named) >= 2 and index < len(named):
            self.picked_thing = _with_determiner(named[index], self.article or self.answer)
            return self.picked_thing
        if self.topic:
            return self._thing(_ORDINAL_WORDS[index], self.topic.split()[-1])
        return None

    def _focus(self, things: list[str], kind: str, source: str) -> str:
        """Which of the things the previous turn was about: the one its question or answer
        names (by the words that tell them apart), else the one last named before the quoted
        sentence, else the first."""
        pattern = re.compile(rf"^{_kind_pattern(kind)}$", re.I)
        own = {thing: {w for w in words(thing)
                       if w not in _NAME_WORDS_IGNORED and not pattern.match(w)}
               for thing in things}
        distinctive = {thing: {w for w in mine
                               if not any(w in theirs for other, theirs in own.items()
                                          if other != thing)}
                       for thing, mine in own.items()}
        for said in (self.previous_question, self.answer):
            present = set(words(said))
            scores = {thing: len(distinctive[thing] & present) for thing in things}
            best = max(scores.values())
            if best and list(scores.values()).count(best) == 1:
                return max(scores, key=lambda thing: scores[thing])
        at = source.find(self.quotes[0]) if self.quotes else -1
        if at > 0:
            before = {thing: source.rfind(thing, 0, at) for thing in things}
            named_before = [thing for thing in things if before[thing] >= 0]
            if named_before:
                return max(named_before, key=lambda thing: before[thing])
        return things[0]

    # Pronouns: he/she for people, it/its/there for the topic ---------------------------------

    def resolve_pronouns(self, text: str) -> str:
        names = self.names

        def person(match: re.Match[str]) -> str:
            who = self.person or (names[0] if names else None)
            if who is None:
                return match.group()
            word = match.group(1).lower()
            # "his"/"hers" are possessive; "her" is ambiguous, and the possessive reads fine.
            possessive = word in {"his", "hers", "her"} and _possessive(text, match)
            return f"{who}'s" if possessive else who

        if self.person is None:
            text = _PERSON_PRONOUN.sub(person, text, count=1)
        referent = self.picked_thing or self.thing or self.topic
        if referent is None:
            return text
        for match in _THING_PRONOUN.finditer(text):
            word = match.group(1).lower()
            if word == "there" and (_EXISTENTIAL_BEFORE.search(text[:match.start()])
                                    or _EXISTENTIAL_AFTER.match(text[match.end():])):
                continue
            if word == "there":
                # "Who works there" -> "at the lab"; "near there" -> "near the lab".
                after_preposition = _PREPOSITION_BEFORE.search(text[:match.start()])
                replacement = referent if after_preposition else f"at {referent}"
            elif word in {"its", "their", "theirs"}:
                replacement = f"{referent}'s"
            else:
                replacement = referent
            return text[:match.start()] + replacement + text[match.end():]
        return text


_ORDINAL_WORDS = {0: "first", 1: "second", 2: "third", 3: "fourth", -1: "latter"}


def _possessive(text: str, match: re.Match[str]) -> bool:
    word = match.group(1).lower()
    if word in {"his", "hers"}:
        return True
    # "her" before a noun is possessive ("her role"); at the end or before a verb it is not.
    after = text[match.end():].lstrip()
    return bool(after) and after[0].isalpha() and not after.startswith(("to ", "in ", "at "))
