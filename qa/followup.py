"""Stage 0 — follow-up questions made standalone, from the conversation, without an LLM.

"Who co-leads the lab?" then "What else does the second one do?" is searched as "What else
does Tomas Verhoeven do?". References are resolved from the previous turn only:

- ordinals ("the second one", "the latter") pick from the names in the previous answer;
- he/she/his/her pick its first person (or the one named by an ordinal earlier);
- it/its/they/them/their/there stand for the topic of the previous question ("the lab");
- an elliptical question ("And the tram line?", "What about Verhoeven?") reuses the previous
  question with its topic swapped.

The rewritten question is shown to the user, so a wrong guess is visible and can be rephrased.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from qa.entities import is_organisation, proper_names
from qa.question import AnswerType, answer_type_of

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


_MARKERS = re.compile(r"\s*\[\d+\]")
_ORDINALS = {
    "first": 0, "former": 0, "second": 1, "third": 2, "fourth": 3, "latter": -1, "last": -1,
}
_ORDINAL_REFERENCE = re.compile(
    r"\bthe (first|second|third|fourth|former|latter|last)(?: one| person| of them)?\b", re.I)
_PERSON_PRONOUN = re.compile(r"\b(he|she|him|his|her|hers)\b", re.I)
_THING_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|there)\b", re.I)
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about)\s+(.+?)\s*\??\s*$",
                       re.I)
# The topic of a question: a noun phrase after a determiner, up to a preposition or the end.
_TOPIC = re.compile(
    r"\b((?:the|this|that|these|those)\s+[\w'’\-]+(?:\s+(?!(?:of|in|on|at|to|for|from|by|"
    r"with|about|is|are|was|were)\b)[\w'’\-.]+){0,4})", re.I)
# In "When will the lab open?" the question's last word is its verb, not part of the topic.
_DO_SUPPORT = re.compile(r"\b(?:do|does|did|will|would|can|could|should|shall|may|might)\s+"
                         r"(?:the|this|that|these|those)\b", re.I)
# Names of organisations and things: capitalised words, joined by "of", "for", "and".
_NAMED = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:(?:of|for|and|de|van|von)\s+)?[A-Z][\w'’\-]*)+")
_NAME_BEFORE = re.compile(r"\b(?:of|in|at|from|near)\s+(?:the\s+)?$", re.I)


@dataclass(frozen=True)
class Rewrite:
    """The question as searched, and whether the conversation changed it."""

    text: str
    changed: bool


def standalone_question(question: str, history: Sequence[Turn]) -> Rewrite:
    """The question with references to the previous turn replaced by what they stand for."""
    previous_question = _last(history, "user")
    previous_answer = _last(history, "assistant")
    if previous_question is None and previous_answer is None:
        return Rewrite(question, False)
    answer_text = _MARKERS.sub("", previous_answer or "")
    names = people_in(answer_text)
    topic = topic_of(previous_question or "")
    thing = _answered_thing(previous_question or "", answer_text)
    text = question.strip()

    ellipsis = _ELLIPSIS.match(text)
    if ellipsis and previous_question and topic and not _ORDINAL_REFERENCE.search(text):
        # "And the tram line?" after "When will the lab open?" -> "When will the tram line open?"
        rewritten = _replace_last(previous_question, topic, ellipsis.group(1))
        return Rewrite(rewritten, rewritten != question)

    chosen_person: str | None = None

    def ordinal(match: re.Match[str]) -> str:
        nonlocal chosen_person
        index = _ORDINALS[match.group(1).lower()]
        if not names or index >= len(names):
            return match.group()
        chosen_person = names[index]
        return chosen_person

    text = _ORDINAL_REFERENCE.sub(ordinal, text)

    def person(match: re.Match[str]) -> str:
        who = chosen_person or (names[0] if names else None)
        if who is None:
            return match.group()
        word = match.group(1).lower()
        # "his"/"hers" are possessive; "her" is ambiguous, and the possessive reads fine.
        return f"{who}'s" if word in {"his", "hers", "her"} and _possessive(text, match) else who

    if chosen_person is None:
        text = _PERSON_PRONOUN.sub(person, text, count=1)

    def replace_thing(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        referent = thing or topic
        if referent is None:
            return match.group()
        if word == "there":
            return f"at {referent}"
        if word in {"its", "their", "theirs"}:
            return f"{referent}'s"
        return referent

    text = _THING_PRONOUN.sub(replace_thing, text, count=1)
    text = text[:1].upper() + text[1:]
    return Rewrite(text, text != question.strip())


def people_in(text: str) -> list[str]:
    """Names of people in an answer, in order: not organisations, not places after 'in'."""
    people: list[str] = []
    for match in _names_with_positions(text):
        name, start = match
        if is_organisation(name) or _NAME_BEFORE.search(text[:start]):
            continue
        clean = re.sub(r"^(?:Dr|Prof|Mr|Mrs|Ms|Sir|Dame)\.?\s+", "", name)
        if clean not in people:
            people.append(clean)
    return people


def topic_of(question: str) -> str | None:
    """The main noun phrase of a question ("the lab" in "When will the lab open?"), or None."""
    text = question.strip().rstrip("?").strip()
    matches = list(_TOPIC.finditer(text))
    if not matches:
        return None
    # The first determiner phrase is the subject in "When did the museum reopen?" and the
    # object in "Who co-leads the lab?"; either way the topic.
    topic = matches[0].group(1)
    words = topic.split()
    if _DO_SUPPORT.search(text) and matches[0].end() == len(text) and len(words) > 2:
        topic = " ".join(words[:-1])
    return topic


def named_things(text: str) -> list[str]:
    """Multi-word capitalised names in order ("Bank of Esterland", "Halcyon Biologics")."""
    names = []
    for match in _NAMED.finditer(text):
        name = re.sub(r"^(?:The|A|An)\s+", "", match.group())
        if len(name.split()) >= 2 and name not in names:
            names.append(name)
    return names


def _answered_thing(question: str, answer: str) -> str | None:
    """What the previous answer named, when "it" now means that rather than the topic.

    After "Which company developed the vaccine?", "it" is the company; after "Who cut the
    rate?" answered by a bank, "its" is the bank; after "Who co-leads the lab?" it is the lab.
    """
    kind = answer_type_of(question)
    new = [name for name in named_things(answer) if name.lower() not in question.lower()]
    if not new:
        return None
    if kind in (AnswerType.ORGANISATION, AnswerType.NAME):
        return new[0]
    if kind is AnswerType.PERSON and is_organisation(new[0]):
        return f"the {new[0]}"
    if kind is AnswerType.PLACE:
        return new[0]
    return None


def _names_with_positions(text: str) -> list[tuple[str, int]]:
    found = []
    cursor = 0
    for name in proper_names(text):
        start = text.find(name, cursor)
        found.append((name, max(start, 0)))
        cursor = max(start, 0) + len(name)
    return found


def _possessive(text: str, match: re.Match[str]) -> bool:
    word = match.group(1).lower()
    if word in {"his", "hers"}:
        return True
    # "her" before a noun is possessive ("her role"); at the end or before a verb it is not.
    after = text[match.end():].lstrip()
    return bool(after) and after[0].isalpha() and not after.startswith(("to ", "in ", "at "))


def _replace_last(question: str, old: str, new: str) -> str:
    at = question.rfind(old)
    return question[:at] + new + question[at + len(old):]


def _last(history: Sequence[Turn], role: Role) -> str | None:
    for turn in reversed(history):
        if turn.role == role and turn.content.strip():
            return turn.content
    return None
