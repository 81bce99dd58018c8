"""Stage 0 — follow-up questions made standalone, from the conversation, without an LLM.

"Who co-leads the lab?" then "What else does the second one do?" is searched as "What else
does Tomas Verhoeven do?". References are resolved from the previous turn only:

- ordinals ("the second one", "the latter") pick from the names in the previous answer;
- he/she/his/her pick its first person (or the one named by an ordinal earlier);
- it/its/they/them/their/there stand for the topic of the previous question ("the lab");
- "the other lab", "the other one", "the second company", and "the latter"/"the former" when
  the previous answer names no people, pick a named thing of the same kind ("lab", "company",
  "team"...) from the previous answer's article, different from the one that turn was about;
- an elliptical question ("And the tram line?", "What about Verhoeven?") reuses the previous
  question with its topic swapped; "And what does the other lab do?" is a question of its own
  with a leading "And", not an ellipsis.

The rewritten question is shown to the user, so it must read as a question: a rewrite that is
not well formed, or a reference that cannot be resolved, falls back to the question as asked
with the previous topic added ("What does the other lab focus on? (the joint lab)").

The references are resolved by `qa/references.py`, from what `qa/mentions.py` finds in the
previous turn (its people, named things, topic and quotes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from qa.mentions import quoted_sentences
from qa.references import _REFERENCE, ArticleSource, _Context

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


_ELLIPSIS = re.compile(
    r"^\s*(?:and what about|and how about|what about|how about|and)\s+(.+?)\s*\??\s*$", re.I)
_WH = r"(?:who|whom|whose|what|which|when|where|why|how)"
_AUX = (r"(?:is|are|was|were|am|do|does|did|will|would|can|could|should|shall|may|might|"
        r"must|has|have|had)")
_QUESTION_START = re.compile(
    rf"^(?:{_WH}|{_AUX}|(?:in|on|at|for|from|to|by|with|since|during|of|after|before|under)"
    r"\s+(?:which|what|whom|whose|how)|tell|list|name|describe|explain|give|show|summari[sz]e|"
    r"compare|find|according)\b", re.I)
# "And where?", "How much?": only a question word, asked of the previous question.
_BARE_WH = re.compile(r"^((?:how (?:much|many|long|old|far|often))|who|what|when|where|why|"
                      r"which|how)\s*\??\s*$", re.I)
# The question word of "When will the lab open?", with its auxiliary: a swappable one.
_LEADING_WH = re.compile(rf"^((?:how (?:much|many|long|old|far|often)|{_WH}))\s+{_AUX}\b",
                         re.I)
_WHAT_ABOUT = re.compile(r"^(?:what|how) about\b", re.I)
# A leading "And"/"But" before a question of its own: "And what does the other lab do?"
_LEAD = re.compile(r"^\s*(?:and also|and so|and|but|so|also|then)\s*,?\s+(.+)$", re.I | re.S)

# What makes a rewrite unreadable; a rewrite showing one its question did not is not used.
_GARBLED = {
    "two question words": re.compile(rf"\b{_WH}\s+(?:{_AUX}\s+)?{_WH}\b", re.I),
    "doubled auxiliary": re.compile(
        rf"\b{_AUX}\s+(?:is|are|was|were|am|do|does|did|will|would|can|could|should|shall|"
        r"may|might|must)\b", re.I),
    "doubled word": re.compile(r"\b(\w+)\s+\1\b", re.I),
    "dangling word": re.compile(r"\b(?:the|a|an|and|or|its|their|whose)\s*[?.!]?\s*$", re.I),
    "doubled possessive": re.compile(r"['’]s\s*['’]s?\b"),
}
_MAX_WORDS = 40
# Only the start of the previous turn is read: the names and topic a follow-up refers to are
# there, and a 200 KB message (an API client can send one) must cost no more than this.
MAX_TURN_CHARS = 10_000
# A rewrite adds a name or a topic to the question; one that adds more is not used (a huge
# previous question reused by "And where?" would be searched, and refused as too long).
MAX_ADDED_CHARS = 300


@dataclass(frozen=True)
class Rewrite:
    """The question as searched, and whether the conversation changed it.

    `fallback` is set when the references could not be resolved into a well-formed question:
    the text is then the question as asked with the previous topic added in brackets.
    """

    text: str
    changed: bool
    fallback: bool = False


def standalone_question(question: str, history: Sequence[Turn], *,
                        article: ArticleSource = None) -> Rewrite:
    """The question with references to the previous turn replaced by what they stand for.

    `article` is the text of the document the previous answer quoted (or a function returning
    it); "the other lab" and "the latter" are resolved against the named things in it.
    """
    previous_question = _last(history, "user")
    previous_answer = _last(history, "assistant")
    previous_question = previous_question[:MAX_TURN_CHARS] if previous_question else None
    previous_answer = previous_answer[:MAX_TURN_CHARS] if previous_answer else None
    if previous_question is None and previous_answer is None:
        return Rewrite(question, False)
    asked = question.strip()
    context = _Context(previous_question or "", previous_answer or "", article)

    lead = _LEAD.match(asked)
    # "And what does the other lab focus on?" is a question of its own after an "And".
    own = (lead.group(1) if lead and _QUESTION_START.match(lead.group(1))
           and not _WHAT_ABOUT.match(lead.group(1)) else None)
    base = own[:1].upper() + own[1:] if own else asked
    bare = _BARE_WH.match(own or asked)
    if bare:
        # "And where?" after "When will the lab open?" -> "Where will the lab open?"
        swapped = _swap_question_word(bare.group(1), context)
        return _checked(swapped or base, base, asked, context, resolved=swapped is not None)
    ellipsis = _ELLIPSIS.match(asked)
    text = own or asked
    if ellipsis and own is None and _noun_phrase(ellipsis.group(1)):
        # "And the tram line?" after "When will the lab open?" -> "When will the tram line open?"
        swapped = _swap_topic(ellipsis.group(1), context)
        if swapped is not None:
            return _checked(swapped, base, asked, context)
    text = context.resolve_references(text)
    text = context.resolve_pronouns(text)
    text = text[:1].upper() + text[1:]
    return _checked(text, base, asked, context)


def previous_quotes(history: Sequence[Turn]) -> list[str]:
    """The sentences the previous answer quoted, markers and article labels removed."""
    return quoted_sentences(_last(history, "assistant") or "")


def garbled(text: str) -> set[str]:
    """What is wrong with the text as a question ("two question words": "Where is what")."""
    problems = {name for name, pattern in _GARBLED.items() if pattern.search(text)}
    if not _QUESTION_START.match(text.strip()):
        problems.add("no question word")
    if len(text.split()) > _MAX_WORDS:
        problems.add("too long")
    return problems


def _checked(text: str, base: str, asked: str, context: _Context, *,
             resolved: bool = True) -> Rewrite:
    """The rewrite if it reads as a question and resolved what it had to, else the fallback."""
    new_problems = garbled(text) - garbled(asked)
    too_long = len(text) > len(asked) + MAX_ADDED_CHARS
    if resolved and not context.unresolved and not new_problems and not too_long:
        return Rewrite(text, text != asked)
    # The question as asked (without a leading "And" if that left a question of its own) and
    # the previous topic, so the search still lands on the conversation's article.
    if garbled(base) - garbled(asked):
        base = asked
    topic = context.topic or context.subject
    fallback = base
    if topic and topic.lower() not in base.lower():
        fallback = f"{base} ({topic})"
    if len(fallback) > len(asked) + MAX_ADDED_CHARS:
        fallback = base
    return Rewrite(fallback, fallback != asked, fallback=True)


def _noun_phrase(phrase: str) -> bool:
    """True for "the tram line" or "Verhoeven", false for "what does the other lab do"."""
    return (not _QUESTION_START.match(phrase) and not re.search(rf"\b{_AUX}\b", phrase, re.I)
            and len(phrase.split()) <= 8)


def _swap_question_word(word: str, context: _Context) -> str | None:
    """The previous question with another question word, if it reads right: "When will the
    lab open?" -> "Where will the lab open?", but not "Who co-leads ...?" -> "Where co-leads"."""
    previous = context.previous_question.strip()
    match = _LEADING_WH.match(previous)
    # Only adverbs swap with the verb kept: "How much will the lab open?" does not read.
    adverbs = {"when", "where", "why", "how"}
    if match is None or word.lower() not in adverbs or match.group(1).lower() not in adverbs:
        return None
    word = word[:1].upper() + word[1:].lower()
    return word + previous[match.end(1):]


def _swap_topic(phrase: str, context: _Context) -> str | None:
    """The previous question about `phrase` instead of its topic, or None if that is not it."""
    target = context.topic or context.subject
    if not context.previous_question or target is None:
        return None
    if _REFERENCE.search(phrase):
        # "What about the other lab?" -> the other lab by name; "And the second one?" over
        # people does not fit a question about a thing: left to the general rules.
        phrase = context.resolve_references(phrase)
        if context.picked_thing is None or context.unresolved:
            context.reset()
            return None
    if phrase.lower() == target.lower():
        return None
    return _replace_last(context.previous_question, target, phrase)


def _replace_last(question: str, old: str, new: str) -> str:
    at = question.rfind(old)
    return question[:at] + new + question[at + len(old):]


def _last(history: Sequence[Turn], role: Role) -> str | None:
    for turn in reversed(history):
        if turn.role == role and turn.content.strip():
            return turn.content
    return None
