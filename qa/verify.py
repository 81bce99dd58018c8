"""Checking any text against a collection, sentence by sentence (`citeqa verify`).

Each sentence of the text is aligned with the closest sentences of the collection (those of
the chunks closest by vector, plus BM25 for names the embedding blurs), then judged by the same
rules as the citation check of LLM mode: `supported` when it means what an article sentence
says and every name, number and date it states is in that passage; `contradicted` when the
sentence it matches says otherwise (negation, a role given to another person, another figure
for the same thing, another name, number or date in the fact's place); `unsupported`
otherwise. Questions,
greetings, opinions and fragments are `not_checkable`. The rules are in `qa/claims.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

import numpy as np
from pydantic import BaseModel

from core.documents import ChunkRecord, Filters
from core.errors import InvalidInput, TooLarge
from core.text import search_tokens, sentence_spans
from index.embedding import Embedder
from index.store import CollectionStore
from qa.answer import Citation
from qa.claims import Judgement, judge, not_checkable_reason, word_swaps

# Sentences embedded per model call: large enough to batch, small enough that a stream of
# thousands of sentences yields its first verdicts at once.
_BLOCK = 32
# Chunks read per sentence from each retriever, and aligned sentences judged.
_DEPTH = 6
_ALIGNED = 4
_NEAR_TOP = 0.05
# A replaced phrase in its context (five words each side), against the article's phrase in
# the same context: a synonym barely moves the embedding (0.90 and above on the tuning half
# of the verification set), another thing in that place moves it further (a fish for a dog:
# 0.52 to 0.88, one at 0.94). Context keeps one word from being lost in a long sentence.
_SAME_MEANING = 0.89
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r", "\f"} | {"\x7f"}


class Verdict(StrEnum):
    """What the collection says about one sentence."""

    SUPPORTED = "supported"
    CONTRADICTED = "contradicted"
    UNSUPPORTED = "unsupported"
    NOT_CHECKABLE = "not_checkable"


class CheckedStatement(BaseModel):
    """One sentence of the submitted text with its verdict and evidence."""

    text: str
    start: int
    end: int
    verdict: Verdict
    score: float
    reason: str | None = None
    evidence: list[Citation] = []


class Verification(BaseModel):
    """Every sentence of a text, checked, with how many got each verdict."""

    collection: str
    as_of: str
    sentences: list[CheckedStatement]
    counts: dict[str, int]


def count_verdicts(sentences: Sequence[CheckedStatement]) -> dict[str, int]:
    """How many sentences got each verdict, every verdict present."""
    counts = {verdict.value: 0 for verdict in Verdict}
    for sentence in sentences:
        counts[sentence.verdict.value] += 1
    return counts


def statement_spans(text: str, *, max_chars: int, max_sentences: int) -> list[tuple[int, int]]:
    """The sentences of a text to check, as offsets; a text that cannot be checked is refused."""
    if not text.strip():
        raise InvalidInput("the text to check is empty", code="empty_text")
    if len(text) > max_chars:
        raise TooLarge(f"the text has {len(text):,} characters, over the limit of "
                       f"{max_chars:,} (CITEQA_MAX_VERIFY_CHARS)", code="text_too_long")
    if any(ch in _CONTROL for ch in text):
        raise InvalidInput("the text holds control characters (NUL or others): it looks like "
                           "a binary file, not text", code="binary_text")
    spans = sentence_spans(text)
    if len(spans) > max_sentences:
        raise TooLarge(f"the text has {len(spans):,} sentences, over the limit of "
                       f"{max_sentences:,} (CITEQA_MAX_VERIFY_SENTENCES)",
                       code="too_many_sentences")
    return spans


@dataclass(frozen=True)
class _Aligned:
    record: ChunkRecord
    start: int
    end: int
    similarity: float


class Verifier:
    """Checks the sentences of a text against one collection."""

    def __init__(self, target: CollectionStore, embedder: Embedder, *, as_of: date,
                 filters: Filters | None = None) -> None:
        self.target = target
        self.embedder = embedder
        self.filters = replace(filters or Filters(), as_of=as_of.isoformat())

    def check(self, text: str, spans: Sequence[tuple[int, int]]) -> Iterator[CheckedStatement]:
        """Each sentence checked, in order, embedding a block of sentences at a time."""
        for first in range(0, len(spans), _BLOCK):
            block = spans[first:first + _BLOCK]
            pieces = [text[s:e] for s, e in block]
            reasons = [not_checkable_reason(piece) for piece in pieces]
            wanted = [p for p, r in zip(pieces, reasons, strict=True) if r is None]
            vectors = iter(self.embedder.embed_documents(wanted) if wanted else [])
            for (start, end), piece, reason in zip(block, pieces, reasons, strict=True):
                if reason is not None:
                    yield CheckedStatement(text=piece, start=start, end=end,
                                           verdict=Verdict.NOT_CHECKABLE, score=1.0,
                                           reason=reason)
                else:
                    yield self.check_sentence(piece, start, end, np.asarray(next(vectors)))

    def check_sentence(self, piece: str, start: int, end: int,
                       vector: np.ndarray) -> CheckedStatement:
        """One checkable sentence's verdict against its closest article sentences."""
        aligned = self._align(piece, vector)
        judgements = [judge(piece, self._sentence(a), self._passage(a.record), a.similarity,
                            title=a.record.document.title) for a in aligned]
        verdict, score, reason, used = _decide(judgements)
        if verdict == Verdict.SUPPORTED and (swapped := self._swapped_word(
                piece, aligned[used[0]], judgements[used[0]])):
            verdict, score, reason = Verdict.CONTRADICTED, swapped[0], swapped[1]
        if verdict == Verdict.UNSUPPORTED and (paired := self._paired_support(piece, aligned)):
            verdict, score, reason, used = Verdict.SUPPORTED, paired[0], None, paired[1]
        evidence = [self._citation(aligned[i], n, judgements[i].score)
                    for n, i in enumerate(used, start=1)]
        return CheckedStatement(text=piece, start=start, end=end, verdict=verdict,
                                score=round(score, 4), reason=reason, evidence=evidence)

    def _swapped_word(self, piece: str, aligned: _Aligned, judgement: Judgement
                      ) -> tuple[float, str] | None:
        """Confidence and reason if the claim restates its evidence but for a phrase that
        means something else in that place ("arsenic" where the article has "vinyl
        chloride"); None if every changed phrase is a rewording."""
        sentence = self._sentence(aligned)
        swaps = word_swaps(piece, sentence, self._passage(aligned.record))
        if not swaps:
            return None
        vectors = np.asarray(self.embedder.embed_documents(
            [text for swap in swaps for text in (swap.in_context, swap.theirs_in_context)]))
        for n, swap in enumerate(swaps):
            if float(vectors[2 * n] @ vectors[2 * n + 1]) < _SAME_MEANING:
                return (judgement.confidence,
                        f'says "{swap.ours}" where the article says "{swap.theirs}"')
        return None

    def _paired_support(self, piece: str, aligned: Sequence[_Aligned]
                        ) -> tuple[float, list[int]] | None:
        """Support from the closest sentence and another of its article together: a claim
        may join two facts an article states in two sentences."""
        if not aligned:
            return None
        first = aligned[0]
        for j, other in enumerate(aligned[1:], start=1):
            if other.record.document.id != first.record.document.id:
                continue
            ordered = sorted((first, other), key=lambda a: a.start)
            joined = " ".join(self._sentence(a) for a in ordered)
            judgement = judge(piece, joined, self._passage(first.record), first.similarity,
                              title=first.record.document.title)
            if judgement.supports:
                return judgement.score, [0, j]
        return None

    def _align(self, piece: str, vector: np.ndarray) -> list[_Aligned]:
        ids = [hit.chunk_id for hit in self.target.dense_search(vector, _DEPTH, self.filters)]
        tokens = search_tokens(piece)
        if tokens:
            ids += [hit.chunk_id for hit in self.target.lexical_search(tokens, _DEPTH // 2,
                                                                       self.filters)]
        records = self.target.chunks(list(dict.fromkeys(ids)))
        found: dict[tuple[str, int], _Aligned] = {}
        for record in records.values():
            if not record.sentences:
                continue
            similarities = np.stack([s.vector for s in record.sentences]) @ vector
            for sentence, similarity in zip(record.sentences, similarities, strict=True):
                key = (record.document.id, sentence.start)
                if key not in found or found[key].similarity < similarity:
                    found[key] = _Aligned(record, sentence.start, sentence.end,
                                          float(similarity))
        return sorted(found.values(), key=lambda a: -a.similarity)[:_ALIGNED]

    @staticmethod
    def _sentence(aligned: _Aligned) -> str:
        return aligned.record.document.text[aligned.start:aligned.end]

    @staticmethod
    def _passage(record: ChunkRecord) -> str:
        return f"{record.document.title}\n{record.text}"

    def _citation(self, aligned: _Aligned, n: int, score: float) -> Citation:
        document = aligned.record.document
        return Citation(n=n, doc_id=document.id, title=document.title, url=document.url,
                        chunk_id=aligned.record.chunk_id, start=aligned.start, end=aligned.end,
                        quote=document.text[aligned.start:aligned.end], score=round(score, 4))


def _decide(judgements: Sequence[Judgement]) -> tuple[Verdict, float, str | None, list[int]]:
    """The verdict from the judgements of the aligned sentences (closest first), with the
    indexes of the evidence to cite."""
    supporting = [i for i, j in enumerate(judgements) if j.supports]
    if supporting:
        best = max(supporting, key=lambda i: judgements[i].score)
        return Verdict.SUPPORTED, judgements[best].score, None, [best]
    # Only a sentence about as close as the closest can contradict: a farther one is about
    # something else the article says with other figures.
    nearest = judgements[0].similarity if judgements else 0.0
    contradicting = [i for i, j in enumerate(judgements)
                     if j.contradiction and j.similarity >= nearest - _NEAR_TOP]
    if contradicting:
        first = contradicting[0]
        return (Verdict.CONTRADICTED, judgements[first].confidence,
                judgements[first].contradiction, [first])
    if not judgements:
        return Verdict.UNSUPPORTED, 1.0, "nothing in the collection is close to it", []
    best = max(range(len(judgements)), key=lambda i: judgements[i].score)
    return (Verdict.UNSUPPORTED, round(1.0 - judgements[best].score, 4),
            judgements[best].shortfall, [best])
