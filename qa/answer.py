"""The answer object: citations as data (`Document -> Chunk -> Passage -> Answer`)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
"""A citation marker in an answer's text: [1], or [1, 2] as a model may write it."""


class Citation(BaseModel):
    """An exact span of a document that supports one sentence of the answer."""

    n: int = Field(description="Marker number: the answer cites this span as [n].")
    doc_id: str = Field(description="Id of the cited document.")
    title: str = Field(description="Title of the cited document.")
    url: str | None = Field(default=None, description="Link to the document, when known.")
    chunk_id: str = Field(description="Id of the retrieved chunk the quote was found in.")
    start: int = Field(description="Character offset where the quote starts in the document.")
    end: int = Field(description="Character offset where the quote ends in the document.")
    quote: str = Field(description="Exactly document.text[start:end].")
    score: float = Field(description="How well the quote answers the question (higher is better).")
    attributed: bool = Field(
        default=False,
        description="LLM mode: the model did not cite this passage itself; the citation check "
        "found that it supports the sentence (CITEQA_LLM_CITATIONS=attribute).")


class Passage(BaseModel):
    """A retrieved chunk, in ranked order."""

    doc_id: str
    title: str = ""
    url: str | None = Field(default=None, description="Link to the document, when known.")
    chunk_id: str
    start: int = Field(description="Character offset of the chunk in its document.")
    end: int = Field(description="End offset of the chunk in its document.")
    text: str = Field(description="Exactly document.text[start:end].")
    score: float = Field(description="Retrieval score after fusion and reranking.")


class UnsupportedSentence(BaseModel):
    """A generated sentence the citation check rejected."""

    text: str
    cited: list[int] = Field(description="The passage numbers it cited.")
    score: float = Field(description="Its support score against the best cited passage.")
    reason: str


class TimeWindowInfo(BaseModel):
    """The span of document dates favoured for a question's time phrase, as applied."""

    phrase: str = Field(description="The words of the question it was read from.",
                        examples=["this week"])
    start: str = Field(description="The first day the phrase names (YYYY-MM-DD).")
    end: str = Field(description="The last date favoured (YYYY-MM-DD): as_of, since a report "
                     "is dated on or after what it reports.")


class Answer(BaseModel):
    """What citeqa says about a question, with the evidence for it."""

    question: str = Field(description="The question as asked.")
    rewritten_question: str | None = Field(
        default=None,
        description=(
            "The standalone question that was searched, when the conversation history changed "
            "it (\"What else does the second one do?\" -> \"What else does Tomas Verhoeven "
            "do?\"); null when the question was searched as asked."
        ),
    )
    answer: str = Field(description="The answer, each sentence followed by its [n] marker.")
    abstained: bool = Field(
        description="True when the articles do not support an answer; then there are no citations."
    )
    abstain_reason: str | None = Field(
        default=None,
        description="Why the answer abstained: not_supported (the articles searched do not "
        "support an answer), empty_collection (there was nothing to search), "
        "no_matching_documents (no article passes the filters and as_of); null when it "
        "answered. The answer text says the same in words.")
    notes: list[str] = Field(
        default_factory=list,
        description="What the reader should know about what was searched, such as undated "
        "articles a date range left out.")
    support: float = Field(
        default=0.0,
        description=(
            "How strongly the best passage supports answering (0-1); the answer abstains below "
            "the configured threshold (CITEQA_ABSTAIN_THRESHOLD)."
        ),
    )
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)
    mode: str = Field(
        default="extractive",
        description="extractive; llm (a generated, checked answer); llm-extractive (nothing "
        "generated survived the check, so the extractive answer stands in); llm-fallback "
        "(the LLM was down).")
    unsupported: list[UnsupportedSentence] = Field(
        default_factory=list,
        description="LLM mode: generated sentences whose cited passage does not support them "
        "(dropped from the answer unless CITEQA_UNSUPPORTED=flag).")
    timings_ms: dict[str, float] = Field(
        default_factory=dict, description="Milliseconds spent in each stage, and in total. "
        "`embed` is the question's embedding; `retrieve` what retrieval added to it (the "
        "keyword search runs while the question is embedded)."
    )
    as_of: str | None = Field(
        default=None,
        description="The date the question was asked as of (YYYY-MM-DD; default today, UTC): "
        "documents dated after it were not used, and relative time phrases were read against "
        "it.")
    time_window: TimeWindowInfo | None = Field(
        default=None,
        description="What a relative time phrase of the question (\"this week\", "
        "\"yesterday\", \"in March\"...) did, read against as_of: passages of documents "
        "dated from the first day it names up to as_of ranked higher and, when one of them "
        "ranked first, passages of documents dated outside it were left out (undated "
        "documents are neither favoured nor left out). Null when the question names no such "
        "span.")
