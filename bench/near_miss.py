"""Near misses built from RealTimeQA: questions that look answerable but are not.

Three kinds, each from a dev question and never written into the repository (the text is
RealTimeQA's, research use only):

- `passage_removed`: the question asked of a collection that lacks its evidence passage (the
  other half of the passages: same weeks, same kind of news, not the one that answers it),
  kept only when no passage of that collection contains the answer;
- `entity_swap`: a name the question shares with its evidence passage replaced by a name of
  the same shape taken from another question ("Loreen" -> "Kemi Badenoch"), asked of the full
  collection;
- `number_swap`: a number the question shares with its evidence passage changed ("a
  5.2-magnitude quake" -> "a 6.8-magnitude quake").

Only names and numbers that the evidence states are swapped: the passage then says something
else than the question assumes, which a reader can see. (A RealTimeQA question often names
what its passage does not, "Damar Hamlin" for "the 24-year-old Buffalo Bills player"; swapping
such a name changes nothing the articles could show.)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.constraints import constraints_of, quantities_in
from qa.entities import is_organisation
from qa.evaluation import normalize_answer

KINDS = ("passage_removed", "entity_swap", "number_swap")
BENCH = Path(__file__).resolve().parent
REALTIMEQA = BENCH.parent.parent / "shared" / "eval" / "realtimeqa"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSONL file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def half(question_id: str) -> str:
    """'tune' or 'check', stable for an id (the split every benchmark here uses); a near miss
    `<id>~<kind>` goes with the question `<id>` it was built from."""
    base = question_id.split("~")[0]
    return "tune" if hashlib.sha1(base.encode()).digest()[0] % 2 == 0 else "check"


def kept_in_half_collection(question_id: str) -> bool:
    """Whether a question's passage is in the half collection (a second, independent bit)."""
    return hashlib.sha1(question_id.encode()).digest()[1] % 2 == 0


def entity_swaps(questions: list[dict[str, Any]], passages: dict[str, str],
                 *, seed: int = 12) -> Iterator[dict[str, Any]]:
    """Each question with one of its names replaced by another question's name."""
    rng = random.Random(seed)
    pool: dict[tuple[str, int], list[str]] = {}
    for question in questions:
        for name in _swappable(question["question"]):
            pool.setdefault(_shape(name), []).append(name)
    for question in questions:
        evidence = passages.get(question["gold_doc_ids"][0], "").lower()
        names = [n for n in _swappable(question["question"])
                 if re.search(rf"\b{re.escape(n.lower())}\b", evidence)]
        if not names:
            continue
        # The longest name is the most specific thing the question is about.
        old = max(names, key=len)
        choices = [n for n in pool.get(_shape(old), [])
                   if n.lower() not in question["question"].lower()
                   and not any(w in evidence for w in n.lower().split())]
        if not choices:
            continue
        new = rng.choice(choices)
        yield _swapped(question, "entity_swap", question["question"].replace(old, new, 1),
                       f"{old} -> {new}")


def _swappable(question: str) -> list[str]:
    """The question's capitalised names, without possessives (not years, not quoted phrases)."""
    names = [re.sub(r"['’]s$", "", name) for name in constraints_of(question).names]
    return [name for name in names if name[:1].isupper() and name in question]


def _shape(name: str) -> tuple[str, int]:
    """A rough kind of name (organisation, person, other) and its length, to swap like for like."""
    parts = name.split()
    if name.isupper() or is_organisation(name):
        kind = "organisation"
    elif 2 <= len(parts) <= 3 and all(p[:1].isupper() for p in parts):
        kind = "person"
    else:
        kind = "other"
    return kind, min(len(parts), 3)


def number_swaps(questions: list[dict[str, Any]], passages: dict[str, str],
                 *, seed: int = 12) -> Iterator[dict[str, Any]]:
    """Each question with one of its numbers changed to another plausible value."""
    rng = random.Random(seed)
    for question in questions:
        quantities = constraints_of(question["question"]).quantities
        evidence = passages.get(question["gold_doc_ids"][0], "")
        stated = quantities_in(evidence)
        digits = [q for q in quantities if re.search(r"\d", q.text)
                  and any(s.value == q.value for s in stated)]
        if not digits:
            continue
        asked = digits[0]
        number = re.search(r"\d+(?:[.,]\d+)*", asked.text)
        assert number is not None
        replacement = _other_number(number.group(), rng)
        if replacement in evidence or any(q.text.startswith(replacement) for q in stated):
            continue
        new_text = asked.text.replace(number.group(), replacement, 1)
        yield _swapped(question, "number_swap",
                       question["question"].replace(asked.text, new_text, 1),
                       f"{asked.text} -> {new_text}")


def passage_removed(questions: list[dict[str, Any]], kept_passages: list[str]
                    ) -> Iterator[dict[str, Any]]:
    """Questions whose passage is not kept, when no kept passage holds their answer."""
    haystack = [f" {normalize_answer(text)} " for text in kept_passages]
    for question in questions:
        if kept_in_half_collection(question["id"]):
            continue
        answers = [f" {normalize_answer(a)} " for a in question.get("answers", [])]
        if any(a.strip() and a in text for a in answers for text in haystack):
            continue
        yield {**question, "id": f"{question['id']}~passage_removed", "gold_doc_ids": [],
               "answerable": False, "kind": "passage_removed",
               "about": question["gold_doc_ids"][0]}


def _other_number(number: str, rng: random.Random) -> str:
    """A different number written the same way (decimals kept, thousands separators kept)."""
    plain = number.replace(",", "")
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    value = float(plain)
    factor = rng.choice([0.5, 0.6, 0.75, 1.3, 1.5, 2.0])
    new = value * factor
    if decimals == 0 and round(new) == value:
        new = value + rng.choice([1, 2, 3])
    text = f"{new:.{decimals}f}" if decimals else str(round(new))
    if "," in number and "." not in number:
        text = f"{round(new):,}"
    return text if text != number else str(int(value) + 1)


def _swapped(question: dict[str, Any], kind: str, text: str, change: str) -> dict[str, Any]:
    return {"id": f"{question['id']}~{kind}", "question": text, "gold_doc_ids": [],
            "answerable": False, "kind": kind, "change": change,
            "about": question["gold_doc_ids"][0]}


@dataclass(frozen=True)
class DevSets:
    """The dev data `make train` fits on and `make eval` reports, both halves."""

    realtimeqa_questions: list[dict[str, Any]]
    realtimeqa_corpus: list[dict[str, Any]]
    # The passages of the half collection that `passage_removed` questions are asked of.
    kept_passages: list[dict[str, Any]]
    swaps: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    own_questions: list[dict[str, Any]]
    own_corpus: list[dict[str, Any]]


def dev_sets() -> DevSets:
    """RealTimeQA, the near misses built from it, and our own reading-comprehension sets."""
    questions = read_jsonl(REALTIMEQA / "questions.jsonl.gz")
    corpus = read_jsonl(REALTIMEQA / "corpus.jsonl.gz")
    passages = {p["id"]: p["text"] for p in corpus}
    owner = {q["gold_doc_ids"][0]: q["id"] for q in questions}
    kept = [p for p in corpus if kept_in_half_collection(owner.get(p["id"], p["id"]))]
    own_questions: list[dict[str, Any]] = []
    own_corpus: list[dict[str, Any]] = []
    for questions_file in sorted((BENCH / "data").glob("rc*_questions.jsonl")):
        own_questions += read_jsonl(questions_file)
        own_corpus += read_jsonl(questions_file.with_name(
            questions_file.name.replace("_questions", "_corpus")))
    return DevSets(
        questions, corpus, kept,
        [*entity_swaps(questions, passages), *number_swaps(questions, passages)],
        list(passage_removed(questions, [p["text"] for p in kept])),
        own_questions, own_corpus)
