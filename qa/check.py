"""Stage 5b — the citation check of generated answers: every sentence must cite a passage that
supports it.

A generated sentence is supported by passage [n] when it means what one of the passage's
sentences says (embedding similarity, from the sentence vectors stored at ingestion), every
name, number and date it states appears in that passage, and it does not change what those
words say there: no negation the passage lacks (or lacks one it has), no role given to another
person, no number paired with what another number counts. Each kept citation points at the
exact span of the best-supporting sentence, not at the whole chunk. The facts check and the
meaning changes are in `qa/conflicts.py`, the numbers they read in `qa/quantities.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from core.text import search_tokens, sentence_spans
from index.embedding import Embedder
from qa.answer import MARKER
from qa.conflicts import meaning_change, missing_facts
from qa.retrieve import Candidate

# Support = half the similarity to the passage's closest sentence (cosine, all-MiniLM-L6-v2),
# half the share of the sentence's content words found in the passage. A paraphrase of a
# passage sentence scores 0.7-0.9; an invented claim on the same topic 0.3-0.5.
SUPPORT_THRESHOLD = 0.55
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")


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
    cleaned = [_SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(MARKER.sub(" ", piece).split()))
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


def _markers(piece: str) -> list[int]:
    found: list[int] = []
    for group in MARKER.findall(piece):
        found.extend(int(n) for n in re.split(r"\s*,\s*", group))
    return found
