"""The verification set of `make eval-verify`: statements with the verdict they should get.

Built from the dev data in `../shared/eval` at run time and never written into the repository
(RealTimeQA's passages are research use only). The RealTimeQA collection is the half collection
of the near misses (`bench/near_miss.py: kept_in_half_collection`): its passages are ingested,
the others are held out. From each question whose answer is in its evidence passage:

- `original` (supported): the passage sentence that holds the answer, if the passage is kept;
- `reworded` (supported): the same sentence reworded by the rules of `reword` (the answer kept);
- `swapped` (contradicted): the same sentence with the answer replaced by a wrong choice that
  the passage does not contain anywhere;
- `held_out` (unsupported): the sentence that holds the answer, if the passage is held out and
  no kept passage restates it (`HELD_OUT_OVERLAP`).

SciFact claims (`scifact`) are checked against the whole SciFact corpus; they have no expected
verdict (the qrels say which abstract is about the claim, not whether it supports it).
Statements go to the tuning or check half of the question they come from (`half`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.near_miss import half, kept_in_half_collection
from core.text import STOP_WORDS, search_tokens, sentence_spans

KINDS = ("original", "reworded", "swapped", "held_out")
EXPECTED = {"original": "supported", "reworded": "supported", "swapped": "contradicted",
            "held_out": "unsupported"}
# A held-out sentence is dropped when one kept passage holds this share of its content words:
# the same story told in a kept passage could rightly support it.
HELD_OUT_OVERLAP = 0.5
# Stands for the answer while the rewording rules run, so that no rule touches it.
_ANSWER = "\ue000"


@dataclass(frozen=True)
class Statement:
    """One sentence to check, with where it comes from and the verdict it should get."""

    id: str
    kind: str
    text: str
    doc_id: str
    half: str
    expected: str | None
    # "name_or_number" (capitalised or a figure) or "common_word" (lower case: "pears"),
    # as the answer is written in the sentence; verify's swap check reads names, numbers and
    # dates, so swaps of the two shapes are reported apart.
    answer_shape: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The statement as a JSON object."""
        return {"id": self.id, "kind": self.kind, "text": self.text, "doc_id": self.doc_id,
                "half": self.half, "expected": self.expected,
                "answer_shape": self.answer_shape}


@dataclass(frozen=True)
class AnswerSentence:
    """The passage sentence that holds the answer, and where the answer stands in it."""

    sentence: str
    start: int
    end: int


@dataclass
class VerifySet:
    """The statements, the passages to ingest and how many candidates each rule skipped."""

    statements: list[Statement]
    kept_passages: list[dict[str, Any]]
    held_out_ids: set[str]
    skipped: dict[str, int] = field(default_factory=dict)


def answer_pattern(answer: str) -> re.Pattern[str]:
    """The answer as a whole word or phrase, any case."""
    return re.compile(rf"(?<!\w){re.escape(answer.strip())}(?!\w)", re.IGNORECASE)


def answer_sentence(passage: str, answer: str) -> AnswerSentence | None:
    """The first sentence of the passage that holds the answer (as a whole word), or None."""
    pattern = answer_pattern(answer)
    for start, end in sentence_spans(passage):
        sentence = passage[start:end]
        if match := pattern.search(sentence):
            return AnswerSentence(sentence, match.start(), match.end())
    return None


def swap_answer(found: AnswerSentence, answer: str, choices: Sequence[str], passage: str
                ) -> str | None:
    """The sentence with its answer replaced by the first wrong choice the passage does not
    contain, or None if every wrong choice is in the passage."""
    for choice in choices:
        if choice.strip().lower() == answer.strip().lower() or not choice.strip():
            continue
        if answer_pattern(choice).search(passage):
            continue
        written = found.sentence[found.start:found.end]
        # A lower-case answer in the sentence ("sesame seeds") takes a lower-case choice.
        if written[:1].islower() and choice[:1].isupper() and answer[:1].isupper():
            choice = choice[:1].lower() + choice[1:]
        return found.sentence[:found.start] + choice.strip() + found.sentence[found.end:]
    return None


# Word-for-word replacements that keep the meaning of a news sentence.
_SYNONYMS = {
    "said": "stated", "says": "states", "announced": "revealed", "announces": "reveals",
    "reported": "stated", "began": "started", "begin": "start", "begins": "starts",
    "more than": "over", "nearly": "almost", "approximately": "about",
    "purchased": "bought", "following": "after", "because of": "due to",
    "largest": "biggest", "died": "passed away", "currently": "now",
    "received": "got", "recently": "lately", "intends to": "plans to", "plans to": "intends to",
    "company": "firm", "film": "movie", "movie": "film", "country": "nation",
    "despite": "in spite of", "several": "a number of", "amid": "in the midst of",
    "launched": "introduced", "showed": "indicated", "shows": "indicates", "people": "individuals",
    "major": "big", "finished": "ended", "helped": "assisted", "wants to": "aims to",
    "biggest": "largest",
}
_SYNONYM = re.compile(r"\b(" + "|".join(sorted(_SYNONYMS, key=len, reverse=True)) + r")\b",
                      re.IGNORECASE)
# "..., police said." -> "Police said that ...": the attribution moved to the front.
_ATTRIBUTION = re.compile(
    r"^(?P<claim>[^,]{12,}.*?),\s+(?P<who>[\w.'’-]+(?:\s+[\w.'’-]+){0,5}?)"
    r"\s+(?P<verb>said|says|reported|announced|added|explained)"
    r"(?P<when>\s+(?:on\s+)?(?:this|last|on|in)?\s*[\w]+)?(?P<end>[.!]?)$")
# ", according to X." at the end goes to the front, and the other way round.
_ACCORDING_END = re.compile(r"^(?P<claim>.{12,}?),\s+according to (?P<who>[^,]{2,60}?)"
                            r"(?P<end>[.!]?)$")
_ACCORDING_START = re.compile(r"^According to (?P<who>[^,]{2,60}),\s+(?P<claim>.{12,}?)"
                              r"(?P<end>[.!]?)$")
# "On Monday, the ..." -> "The ... on Monday.": a short opening phrase moved to the end.
_OPENING = re.compile(
    r"^(?P<phrase>(?:On|In|Last|Earlier|This|Since|After|During|By)\s[^,]{2,40}),\s+"
    r"(?P<rest>.+?)(?P<end>[.!]?)$")
_LOWER_FIRST = {"The", "A", "An", "It", "Its", "This", "That", "These", "Those", "There",
                "He", "She", "They", "His", "Her", "Their", "Some", "Many", "More", "Most"}


def reword(found: AnswerSentence) -> str | None:
    """The sentence said differently, its answer untouched: reporting verbs and a few words
    swapped for synonyms, an attribution moved to the front, an opening phrase moved to the
    end. None if no rule applies."""
    answer = found.sentence[found.start:found.end]
    text = found.sentence[:found.start] + _ANSWER + found.sentence[found.end:]
    text = (_move_attribution(text) or _move_according(text) or _move_opening(text)
            or text)
    text = _SYNONYM.sub(lambda m: _same_case(m.group(), _SYNONYMS[m.group().lower()]), text)
    reworded = text.replace(_ANSWER, answer)
    return reworded if reworded != found.sentence else None


def _move_attribution(text: str) -> str | None:
    match = _ATTRIBUTION.match(text)
    if not match:
        return None
    who = match["who"]
    who = who[:1].upper() + who[1:]
    when = match["when"] or ""
    return (f"{who} {match['verb']}{when} that {_lower_first(match['claim'])}"
            f"{match['end'] or '.'}")


def _move_according(text: str) -> str | None:
    if match := _ACCORDING_END.match(text):
        claim = _lower_first(match["claim"])
        return f"According to {match['who']}, {claim}{match['end'] or '.'}"
    if match := _ACCORDING_START.match(text):
        claim = match["claim"]
        return (f"{claim[:1].upper()}{claim[1:]}, according to {match['who']}"
                f"{match['end'] or '.'}")
    return None


def _move_opening(text: str) -> str | None:
    match = _OPENING.match(text)
    if not match:
        return None
    rest = match["rest"]
    phrase = _lower_first(match["phrase"], always=True)
    return f"{rest[:1].upper()}{rest[1:]} {phrase}{match['end'] or '.'}"


def _lower_first(clause: str, *, always: bool = False) -> str:
    first = clause.split(maxsplit=1)[0] if clause.split() else ""
    if always or first in _LOWER_FIRST or first.lower() in STOP_WORDS | set(_SYNONYMS):
        return clause[:1].lower() + clause[1:]
    return clause


def _same_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def overlap(sentence: str, passages: Iterable[set[str]]) -> float:
    """The largest share of the sentence's content words that one passage holds."""
    words = set(search_tokens(sentence))
    if not words:
        return 1.0
    return max((len(words & passage) / len(words) for passage in passages), default=0.0)


def build_verify_set(questions: Sequence[dict[str, Any]], corpus: Sequence[dict[str, Any]]
                     ) -> VerifySet:
    """Statements from RealTimeQA-shaped questions and passages (see the module's docstring)."""
    passages = {p["id"]: p for p in corpus}
    owner = {q["gold_doc_ids"][0]: q["id"] for q in questions}
    kept = [p for p in corpus if kept_in_half_collection(owner.get(p["id"], p["id"]))]
    kept_ids = {p["id"] for p in kept}
    kept_words = [set(search_tokens(f"{p.get('title', '')}\n{p['text']}")) for p in kept]
    skipped = {"answer_not_in_a_sentence": 0, "no_rewording_rule": 0,
               "every_wrong_choice_in_passage": 0, "held_out_restated_in_kept": 0}
    statements: list[Statement] = []
    for question in questions:
        passage = passages.get(question["gold_doc_ids"][0])
        if question.get("answer_in_evidence") and passage is not None:
            statements += _statements_of(question, passage, kept_ids, kept_words, skipped)
    held_out = {p["id"] for p in corpus} - kept_ids
    return VerifySet(statements, kept, held_out, skipped)


def _statements_of(question: dict[str, Any], passage: dict[str, Any], kept_ids: set[str],
                   kept_words: Sequence[set[str]], skipped: dict[str, int]) -> list[Statement]:
    """One question's statements; what its rules skip is counted in `skipped`."""
    answer = question["answers"][0]
    found = answer_sentence(passage["text"], answer)
    if found is None:
        skipped["answer_not_in_a_sentence"] += 1
        return []
    texts: dict[str, str] = {}
    if passage["id"] not in kept_ids:
        if overlap(found.sentence, kept_words) >= HELD_OUT_OVERLAP:
            skipped["held_out_restated_in_kept"] += 1
        else:
            texts["held_out"] = found.sentence
    else:
        texts["original"] = found.sentence
        if (reworded := reword(found)) is not None:
            texts["reworded"] = reworded
        else:
            skipped["no_rewording_rule"] += 1
        swapped = swap_answer(found, answer, question.get("choices", []), passage["text"])
        if swapped is not None:
            texts["swapped"] = swapped
        else:
            skipped["every_wrong_choice_in_passage"] += 1
    written = found.sentence[found.start:found.end]
    shape = "common_word" if written[:1].islower() else "name_or_number"
    return [Statement(f"{question['id']}~{kind}", kind, text, passage["id"],
                      half(question["id"]), EXPECTED[kind], shape)
            for kind, text in texts.items()]


def scifact_statements(claims: Sequence[dict[str, Any]]) -> list[Statement]:
    """SciFact claims as statements, with their gold abstracts (expected verdict unknown)."""
    return [Statement(f"{claim['id']}~scifact", "scifact", claim["question"],
                      ",".join(claim["gold_doc_ids"]), half(claim["id"]), None)
            for claim in claims]


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Records as JSONL, written only when they changed (as `bench/evaluate.py` writes its
    corpora, so both find the same file and the ingested collection is reused)."""
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not path.exists() or path.read_text(encoding="utf-8") != content:
        path.write_text(content, encoding="utf-8")
    return path
