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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from index.text import words
from qa.entities import is_organisation, proper_names
from qa.question import AnswerType, answer_type_of

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


_MARKERS = re.compile(r"\s*\[\d+\]")
# Each quote of an extractive answer ends with its [n] marker; a quote may be labelled with
# its article ("According to <title>: ...").
_MARKER = re.compile(r"\[\d+\]")
_ATTRIBUTION = re.compile(r"^\s*According to [^:\n]{1,200}:\s+")
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
# The topic of a question: a noun phrase after a determiner, up to a preposition or the end.
_TOPIC = re.compile(
    r"\b((?:the|this|that|these|those)\s+[\w'’\-]+(?:\s+(?!(?:of|in|on|at|to|for|from|by|"
    r"with|about|is|are|was|were|and|or|but|that|which|who|whom|whose|what|when|where|why|"
    r"how)\b)[\w'’\-.]+){0,4})", re.I)
# In "When will the lab open?" the question's last word is its verb, not part of the topic.
_DO_SUPPORT = re.compile(r"\b(?:do|does|did|will|would|can|could|should|shall|may|might)\s+"
                         r"(?:the|this|that|these|those)\b", re.I)
# "Where is the lab located?": the phrase's last word is a participle, not part of it.
_BE_SUPPORT = re.compile(r"\b(?:is|are|was|were)\s+(?:the|this|that|these|those)\b", re.I)
_PARTICIPLE = re.compile(r"^(?:[a-z]{3,}ed|built|held|run|made|led|known|shown|seen|given|"
                         r"taken|born|done|sold|won|paid|set|put|kept)$")
_PARTICLES = frozenset({"on", "in", "at", "for", "to", "from", "with", "about", "by", "of",
                        "up", "out", "into"})
# Names of organisations and things: capitalised words, joined by "of", "for", "and".
_NAMED = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:(?:of|for|and|de|van|von)\s+)?[A-Z][\w'’\-]*)+")
_NAME_BEFORE = re.compile(r"\b(?:of|in|at|from|near)\s+(?:the\s+)?$", re.I)
_SINGLE_NAME = re.compile(r"(?<!^)\b[A-Z][\w'’\-]+")
_NAME_WORDS_IGNORED = frozenset({"the", "a", "an", "of", "for", "and", "de", "van", "von"})

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
# How far before a name its "of the" or "lab" is looked for; bounded, so that looking is
# linear in the text, not quadratic.
_LOOK_BEHIND = 100


@dataclass(frozen=True)
class Rewrite:
    """The question as searched, and whether the conversation changed it.

    `fallback` is set when the references could not be resolved into a well-formed question:
    the text is then the question as asked with the previous topic added in brackets.
    """

    text: str
    changed: bool
    fallback: bool = False


# The text of the previous answer's article, or a function that finds it when asked (only
# called when a reference needs it: "the other lab", "the latter").
ArticleSource = str | Callable[[], str | None] | None


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


def quoted_sentences(answer: str) -> list[str]:
    """The quotes of an extractive answer: the text before each [n] marker."""
    quotes = []
    start = 0
    # The text between markers, one pass: a lazy "(.+?)\s*\[n\]" pattern rescans the rest of
    # the text from every position when no marker follows, quadratic in its length.
    for match in _MARKER.finditer(answer):
        quote = _ATTRIBUTION.sub("", answer[start:match.start()].strip()).strip()
        start = match.end()
        if quote:
            quotes.append(quote)
    return quotes


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


class _Context:
    """What the previous turn makes available to resolve references with."""

    def __init__(self, previous_question: str, previous_answer: str,
                 article: ArticleSource) -> None:
        self.previous_question = previous_question
        self.answer = _MARKERS.sub("", previous_answer)
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


def things_of_kind(text: str, kind: str) -> list[str]:
    """Named things of a kind in order of mention: for "lab", "DAMO-USTC Joint Laboratory",
    "the Alimama lab"; for "company", "Corvalis Systems" in "the software company Corvalis
    Systems" or "Halcyon Biologics, a company based in Lyon". Headlines are skipped unless the
    whole line is the name."""
    noun = _kind_pattern(kind)
    last_word = re.compile(rf"^{noun}$", re.I)
    before = re.compile(rf"\b{noun}\s+(?:the\s+)?$", re.I)
    after = re.compile(rf"^\s*,\s+(?:a|an|the|its)\s+(?:[\w\-]+\s+){{0,3}}{noun}\b", re.I)
    lower_noun = re.compile(rf"\b[Tt]he\s+((?:[A-Z][\w'’\-]*\s+)+{noun})\b")
    found: list[str] = []

    def add(name: str) -> None:
        lowered = name.lower()
        if any(lowered in known.lower() or known.lower() in lowered for known in found):
            return
        found.append(name)

    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        if not line:
            continue
        heading = not line.endswith((".", "!", "?", ":", '"', "”", "'", "’", ")"))
        for match in _NAMED.finditer(line):
            name = re.sub(r"^(?:The|A|An)\s+", "", match.group())
            if len(name.split()) < 2:
                continue
            # A headline names a thing only as a whole "The DAMO-USTC Joint Laboratory";
            # "Harbourline Energy Opens Two Labs" is a sentence in title case.
            if heading and line != f"The {name}":
                continue
            # The head of "Canary Institute of Ocean Sciences" is "Institute".
            head = name.split(" of ")[0].split()[-1]
            if (last_word.match(head)
                    or before.search(line[max(0, match.start() - _LOOK_BEHIND):match.start()])
                    or after.match(line[match.end():])):
                add(name)
        if not heading:
            for match in lower_noun.finditer(line):
                add(match.group(1))
    return found


def _kind_of(noun: str) -> str:
    """The singular of a kind noun, "laboratory" as "lab"."""
    noun = noun.lower()
    if noun in {"laboratory", "laboratories", "labs"}:
        return "lab"
    if noun.endswith("ies") and len(noun) > 4:
        return noun[:-3] + "y"
    if noun.endswith("s") and not noun.endswith("ss") and len(noun) > 3:
        return noun[:-1]
    return noun


def _kind_pattern(kind: str) -> str:
    """A regex for the kind and its plural: "lab" also matches "Laboratory"."""
    if kind == "lab":
        return r"(?:lab|labs|laboratory|laboratories)"
    if kind.endswith("y") and len(kind) > 2:
        return rf"(?:{re.escape(kind)}|{re.escape(kind[:-1])}ies)"
    return rf"(?:{re.escape(kind)}|{re.escape(kind)}s|{re.escape(kind)}es)"


def _with_determiner(name: str, text: str) -> str:
    """"the Coastal Hydrogen Lab" if the text says it so, "Corvalis Systems" otherwise."""
    if re.search(rf"\bthe\s+{re.escape(name)}", text, re.I):
        return f"the {name}"
    return name


def _subject_name(question: str) -> str | None:
    """The name a question is about when it has no "the ..." topic ("Miriam Okafor")."""
    names = proper_names(question)
    if names:
        return re.sub(r"^(?:Dr|Prof|Professor|Mr|Mrs|Ms|Sir|Dame)\.?\s+", "", names[0])
    single = _SINGLE_NAME.search(question.strip())
    return single.group() if single else None


def people_in(text: str) -> list[str]:
    """Names of people in an answer, in order: not organisations, not places after 'in'."""
    people: list[str] = []
    seen: set[str] = set()
    for match in _names_with_positions(text):
        name, start = match
        if is_organisation(name) or _NAME_BEFORE.search(
                text[max(0, start - _LOOK_BEHIND):start]):
            continue
        # proper_names may keep the full stop before a name that starts a sentence.
        clean = re.sub(r"^(?:Dr|Prof|Professor|Mr|Mrs|Ms|Sir|Dame)\.?\s+", "",
                       name.lstrip(". "))
        if clean not in seen:
            seen.add(clean)
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
    parts = topic.split()
    # What follows the phrase: nothing, or the particle of "focus on", "located in".
    rest = text[matches[0].end():].strip().lower()
    # "When will the lab open", "Where is the lab located": the last word is a verb.
    verb_last = bool(_DO_SUPPORT.search(text)) or bool(
        _BE_SUPPORT.search(text) and _PARTICIPLE.search(parts[-1]))
    if len(parts) > 2 and (not rest or rest in _PARTICLES) and verb_last:
        topic = " ".join(parts[:-1])
    return topic


def named_things(text: str) -> list[str]:
    """Multi-word capitalised names in order ("Bank of Esterland", "Halcyon Biologics")."""
    names: dict[str, None] = {}
    for match in _NAMED.finditer(text):
        name = re.sub(r"^(?:The|A|An)\s+", "", match.group())
        if len(name.split()) >= 2:
            names.setdefault(name)
    return list(names)


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
