"""Stage 6 — citing: the answer text with [n] markers, and each marker's exact span as data."""

from __future__ import annotations

from qa.extract import AnswerSentence
from qa.models import Citation, Passage
from qa.retrieve import Candidate


def cite(sentences: list[AnswerSentence]) -> tuple[str, list[Citation]]:
    """Answer text (each sentence followed by its marker) and the matching citations."""
    parts = []
    citations = []
    for n, sentence in enumerate(sentences, start=1):
        record = sentence.candidate.record
        document = record.document
        quote = document.text[sentence.start:sentence.end]
        # Quotes from two articles are labelled, so a reader never takes them for one.
        parts.append(f"{sentence.label} {quote} [{n}]" if sentence.label else f"{quote} [{n}]")
        citations.append(
            Citation(
                n=n,
                doc_id=document.id,
                title=document.title,
                url=document.url,
                chunk_id=record.chunk_id,
                start=sentence.start,
                end=sentence.end,
                quote=quote,
                score=round(sentence.score, 4),
            )
        )
    return " ".join(parts), citations


def passages(candidates: list[Candidate], top_k: int) -> list[Passage]:
    """The top retrieved chunks, as shown beside the answer."""
    return [
        Passage(
            doc_id=c.record.document.id,
            title=c.record.document.title,
            chunk_id=c.record.chunk_id,
            start=c.record.start,
            end=c.record.end,
            text=c.record.text,
            score=round(c.score, 6),
        )
        for c in candidates[:top_k]
    ]
