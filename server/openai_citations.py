"""What the OpenAI-compatible routes (`/v1/chat/completions`, `/v1/responses`) share: model
names, and an answer's citations as OpenAI `url_citation` annotations and as an optional
"Sources:" footer in the text.

An annotation spans one `[n]` marker of the text (`[1, 2]` gives one annotation per number,
both spanning the marker), as OpenAI's own web-search annotations span the inline citation.
Its `url` opens citeqa's page with the cited passage highlighted, placed by its offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from citeqa import Citeqa
from core.errors import NotFound
from qa.answer import MARKER, Answer, Citation, TimeWindowInfo

MODEL = "citeqa"
SOURCES_SUFFIX = "+sources"
"""Appended to a model name (`citeqa+sources`, `citeqa:<collection>+sources`): the text ends
with a numbered list of the sources, for chat apps that show nothing but the text."""


@dataclass(frozen=True)
class ModelChoice:
    """What a model name asks for."""

    collection: str
    sources_footer: bool


def model_choice(model: str, citeqa: Citeqa) -> ModelChoice:
    """The collection (and footer) a model name asks for; 404 for a model this server does not
    have (an unknown collection is refused when the question is asked)."""
    footer = model.endswith(SOURCES_SUFFIX)
    name = model.removesuffix(SOURCES_SUFFIX) if footer else model
    if name == MODEL:
        return ModelChoice(citeqa.collection_name(None), footer)
    prefix = f"{MODEL}:"
    if not name.startswith(prefix) or not name[len(prefix):]:
        raise NotFound(f"unknown model {model!r}: use {MODEL!r} or '{MODEL}:<collection>', "
                       f"optionally ending in {SOURCES_SUFFIX!r} (GET /v1/models lists them)",
                       code="model_not_found")
    return ModelChoice(name[len(prefix):], footer)


def model_ids(citeqa: Citeqa) -> list[str]:
    """Every model name this server answers to: each collection, with and without footer."""
    names = [MODEL] + [f"{MODEL}:{record.name}" for record, _, _ in citeqa.collections()]
    return [variant for name in names for variant in (name, name + SOURCES_SUFFIX)]


def passage_link(base_url: str, collection: str, citation: Citation) -> str:
    """citeqa's page, opened on the cited document with the cited span highlighted."""
    fragment = urlencode({"source": citation.doc_id, "collection": collection,
                          "start": citation.start, "end": citation.end, "n": citation.n},
                         quote_via=quote)
    return f"{base_url.rstrip('/')}/#{fragment}"


class CiteqaExtras(BaseModel):
    """What citeqa adds beyond the OpenAI fields."""

    abstained: bool = Field(description="True when the articles do not support an answer.")
    support: float
    rewritten_question: str | None = Field(
        description="The standalone question searched, when the conversation changed it.")
    collection: str
    as_of: str | None = Field(default=None,
                              description="The date the question was asked as of.")
    time_window: TimeWindowInfo | None = Field(
        default=None, description="The dates a time phrase of the question pointed at.")

    @classmethod
    def of(cls, answer: Answer, collection: str) -> CiteqaExtras:
        """An answer's extras."""
        return cls(abstained=answer.abstained, support=answer.support,
                   rewritten_question=answer.rewritten_question, collection=collection,
                   as_of=answer.as_of, time_window=answer.time_window)


class UrlCitationBody(BaseModel):
    """OpenAI's `url_citation` fields, plus citeqa's (which clients keep as they are)."""

    url: str = Field(description="citeqa's page, opened on the cited passage.")
    title: str = Field(description="Title of the cited document.")
    start_index: int = Field(description="Where the `[n]` marker starts in the text.")
    end_index: int = Field(description="Where the `[n]` marker ends in the text.")
    n: int = Field(description="The citation's number.")
    doc_id: str = Field(description="Id of the cited document.")
    start: int = Field(description="Where the quote starts in the document's text.")
    end: int = Field(description="Where the quote ends in the document's text.")
    quote: str = Field(description="Exactly the document's text[start:end].")


def url_citations(text: str, citations: list[Citation], *, base_url: str, collection: str
                  ) -> list[UrlCitationBody]:
    """One annotation per citation number of each `[n]` marker of the text, in order."""
    by_number = {citation.n: citation for citation in citations}
    spans = []
    for marker in MARKER.finditer(text):
        for number in marker.group(1).split(","):
            citation = by_number.get(int(number))
            if citation is None:
                continue
            spans.append(UrlCitationBody(
                url=passage_link(base_url, collection, citation), title=citation.title,
                start_index=marker.start(), end_index=marker.end(), n=citation.n,
                doc_id=citation.doc_id, start=citation.start, end=citation.end,
                quote=citation.quote))
    return spans


def sources_footer(citations: list[Citation], *, base_url: str, collection: str) -> str:
    """The "Sources:" list appended with `+sources`: number, title, quote and link of each
    citation; empty when nothing is cited."""
    if not citations:
        return ""
    lines = [f"- [{c.n}] {c.title}: “{' '.join(c.quote.split())}” "
             f"<{passage_link(base_url, collection, c)}>" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines)


@dataclass(frozen=True)
class CitedReply:
    """The text a client is sent, and the annotations into it."""

    answer_text: str
    footer: str
    annotations: list[UrlCitationBody]

    @property
    def text(self) -> str:
        """The answer, then the footer (if any): annotation indexes hold for both."""
        return self.answer_text + self.footer


def cited_reply(answer: Answer, choice: ModelChoice, base_url: str) -> CitedReply:
    """The answer as a client gets it: its text, the footer it asked for, the annotations."""
    footer = (sources_footer(answer.citations, base_url=base_url, collection=choice.collection)
              if choice.sources_footer else "")
    return CitedReply(answer.answer, footer,
                      url_citations(answer.answer, answer.citations, base_url=base_url,
                                    collection=choice.collection))
