"""What a previous turn of a conversation names, for resolving a follow-up's references.

The quotes of an extractive answer, the people and the multi-word named things it names, the
named things of a kind ("lab", "company") in an article, and the topic (or the subject's name)
of a question, each in order of mention. `qa/references.py` resolves "the other lab", "the
latter" and pronouns against them; the scans are linear in the text.
"""

from __future__ import annotations

import re

from qa.answer import MARKER
from qa.entities import is_organisation, proper_names
from qa.question import AnswerType, answer_type_of

# Each quote of an extractive answer ends with its [n] marker; a quote may be labelled with
# its article ("According to <title>: ...").
_ATTRIBUTION = re.compile(r"^\s*According to [^:\n]{1,200}:\s+")
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
# How far before a name its "of the" or "lab" is looked for; bounded, so that looking is
# linear in the text, not quadratic.
_LOOK_BEHIND = 100


def quoted_sentences(answer: str) -> list[str]:
    """The quotes of an extractive answer: the text before each [n] marker."""
    quotes = []
    start = 0
    # The text between markers, one pass: a lazy "(.+?)\s*\[n\]" pattern rescans the rest of
    # the text from every position when no marker follows, quadratic in its length.
    for match in MARKER.finditer(answer):
        quote = _ATTRIBUTION.sub("", answer[start:match.start()].strip()).strip()
        start = match.end()
        if quote:
            quotes.append(quote)
    return quotes


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
