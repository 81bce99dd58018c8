"""Stage 6 — citing: the answer text with [n] markers, and each marker's exact span as data."""

from __future__ import annotations

from qa.answer import Citation, Passage
from qa.draft import Draft
from qa.retrieve import Candidate


def cite(draft: Draft) -> tuple[str, list[Citation]]:
    """Answer text (each sentence followed by its marker) and the matching citations.

    A quoted sentence is its span; a generated one (LLM mode) is the model's wording, cited to
    the span the check found supporting it. Rejected sentences kept flagged
    (CITEQA_UNSUPPORTED=flag) stand where they were written, marked [unsupported].
    """
    flagged: dict[int, list[str]] = {}
    for position, text in draft.flagged:
        flagged.setdefault(position, []).append(text)
    parts = [f"{text} [unsupported]" for text in flagged.get(0, [])]
    citations = []
    for n, sentence in enumerate(draft.sentences, start=1):
        record = sentence.candidate.record
        document = record.document
        quote = document.text[sentence.start:sentence.end]
        said = sentence.wording if sentence.wording is not None else quote
        # Quotes from two articles are labelled, so a reader never takes them for one.
        parts.append(f"{sentence.label} {said} [{n}]" if sentence.label else f"{said} [{n}]")
        parts.extend(f"{text} [unsupported]" for text in flagged.get(n, []))
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
                attributed=sentence.attributed,
            )
        )
    return " ".join(parts), citations


def shown_passages(candidates: list[Candidate], top_k: int) -> list[Passage]:
    """The top retrieved chunks, as shown beside the answer."""
    return [
        Passage(
            doc_id=c.record.document.id,
            title=c.record.document.title,
            url=c.record.document.url,
            chunk_id=c.record.chunk_id,
            start=c.record.start,
            end=c.record.end,
            text=c.record.text,
            score=round(c.score, 6),
        )
        for c in candidates[:top_k]
    ]
