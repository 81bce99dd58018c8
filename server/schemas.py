"""Request and response bodies of the HTTP API (the answer object lives in `qa.answer`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from core.documents import MAX_ID_CHARS, DocumentInfo, Filters, StoredDocument, date_number
from core.errors import TooLarge
from qa.answer import Passage
from qa.followup import Turn
from qa.timeframe import parse_day


def _is_day(value: str | None) -> str | None:
    if value is not None and parse_day(value) is None:
        raise ValueError(f"expected a date like 2024-05-02 (YYYY-MM-DD), got {value!r}")
    return value


AsOf = Annotated[str | None, AfterValidator(_is_day), Field(
    description="Ask as of this date (YYYY-MM-DD; default today, UTC): documents dated after "
    "it are not used (undated ones are), and \"this week\", \"yesterday\", \"on Wednesday\", "
    "\"last month\", \"in March\"... are read against it, favouring documents dated then.",
    examples=["2024-05-02"], json_schema_extra={"format": "date"})]


def as_of_date(value: str | None) -> date | None:
    """A request's validated `as_of` as a date; None for today."""
    return parse_day(value) if value is not None else None


# Filter lists become query parameters in SQLite and Chroma, which refuse (with a 500) lists
# past about 32k entries; a clear 422 long before that is the better answer.
MAX_FILTER_ENTRIES = 1_000


class FiltersIn(BaseModel):
    """Restrict retrieval to some documents."""

    source: str | list[str] | None = Field(
        default=None,
        description=f"Only documents from this source (or any of these, at most "
        f"{MAX_FILTER_ENTRIES:,}).",
    )
    date_from: str | None = Field(default=None, description="Earliest date, e.g. 2026-01-31.")
    date_to: str | None = Field(default=None, description="Latest date, e.g. 2026-12-31.")
    doc_ids: list[str] | None = Field(
        default=None, description=f"Only these documents (at most {MAX_FILTER_ENTRIES:,}).")

    @field_validator("source", "doc_ids")
    @classmethod
    def _not_too_many(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_FILTER_ENTRIES:
            raise ValueError(f"{len(value):,} entries; the limit is {MAX_FILTER_ENTRIES:,} per "
                             "filter list")
        return value

    @field_validator("date_from", "date_to")
    @classmethod
    def _is_date(cls, value: str | None) -> str | None:
        if value is not None and date_number(value) is None:
            raise ValueError(f"expected a date like 2026-01-31, got {value!r}")
        return value

    def to_filters(self) -> Filters:
        """The index-level filters."""
        sources = [self.source] if isinstance(self.source, str) else (self.source or [])
        return Filters(
            sources=tuple(sources),
            doc_ids=tuple(self.doc_ids or ()),
            date_from=self.date_from,
            date_to=self.date_to,
        )


# Conversations sent with a question (`history`, or the `messages` of the chat route). Only
# the previous turn is read to rewrite a follow-up, but a request is parsed and held whole.
MAX_MESSAGE_CHARS = 20_000
MAX_CONVERSATION_CHARS = 100_000
MAX_CONTENT_PARTS = 100


def check_conversation(texts: Sequence[str], *, what: str) -> None:
    """Refuse (413) earlier messages that are too long, one by one or together (the question
    has its own limit, checked where it is asked)."""
    total = 0
    for n, text in enumerate(texts):
        if len(text) > MAX_MESSAGE_CHARS:
            raise TooLarge(f"{what}[{n}] is {len(text):,} characters long; the limit is "
                           f"{MAX_MESSAGE_CHARS:,} characters per message",
                           code="message_too_long")
        total += len(text)
    if total > MAX_CONVERSATION_CHARS:
        raise TooLarge(f"the {what} add up to {total:,} characters; the limit is "
                       f"{MAX_CONVERSATION_CHARS:,} characters in all",
                       code="conversation_too_long")


class Message(BaseModel):
    """One earlier turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class AskRequest(BaseModel):
    """A question for `POST /v1/ask` and `POST /v1/ask/stream`."""

    question: str = Field(description="The question, in plain language.",
                          examples=["Who co-leads the lab?"])
    history: list[Message] = Field(
        default_factory=list, max_length=100,
        description=(
            "Earlier turns, oldest first. A follow-up question (\"What else does the second one "
            "do?\") is rewritten into a standalone one from the last turn; the answer reports "
            "it as `rewritten_question`."
        ),
    )
    collection: str | None = Field(default=None,
                                   description="Collection to ask (default: articles).")
    # Strict: `true` or "5" is a mistake to report, not a number to guess.
    top_k: int | None = Field(default=None, ge=1, le=100, strict=True,
                              description="Passages to return.")
    filters: FiltersIn | None = None
    as_of: AsOf = None

    def turns(self) -> list[Turn]:
        """The history as conversation turns."""
        return [Turn(message.role, message.content) for message in self.history]


class DocumentIn(BaseModel):
    """A document sent as JSON: the ingest JSONL format."""

    model_config = {"extra": "allow"}

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    text: str = Field(min_length=1)
    title: str | None = None
    url: str | None = None
    date: str | None = None
    source: str | None = None


class DocumentsIn(BaseModel):
    """Documents to ingest, as JSON."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=10_000)
    collection: str | None = None


class DocumentSummary(BaseModel):
    """A document as listed: everything but its text."""

    id: str
    title: str
    url: str | None = None
    date: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunks: int
    ingested_at: str
    size: int = Field(description="Length of the document's text, in characters.")

    @classmethod
    def of(cls, stored: StoredDocument) -> DocumentSummary:
        """Summary of a stored document."""
        d = stored.document
        return cls(id=d.id, title=d.title, url=d.url, date=d.date, source=d.source,
                   metadata=d.metadata, chunks=stored.chunks, ingested_at=stored.ingested_at,
                   size=len(d.text))

    @classmethod
    def listed(cls, info: DocumentInfo) -> DocumentSummary:
        """Summary of a listed document (read without its text)."""
        return cls(id=info.id, title=info.title, url=info.url, date=info.date,
                   source=info.source, metadata=info.metadata, chunks=info.chunks,
                   ingested_at=info.ingested_at, size=info.size)


class DocumentFull(DocumentSummary):
    """A document with its full text: the text every citation offset refers to."""

    text: str

    @classmethod
    def of(cls, stored: StoredDocument) -> DocumentFull:
        """Full view of a stored document."""
        return cls(**DocumentSummary.of(stored).model_dump(), text=stored.document.text)


class DocumentList(BaseModel):
    """One page of the documents of a collection, in id order."""

    collection: str
    documents: list[DocumentSummary]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page.")
    total: int = Field(description="How many documents the collection holds.")


class Deleted(BaseModel):
    """What a delete removed."""

    collection: str
    deleted: str


class SkippedOut(BaseModel):
    """A file or line that was not ingested, and why."""

    name: str
    reason: str


class IngestResult(BaseModel):
    """What an ingestion did."""

    collection: str
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    skipped: list[SkippedOut]
    pruned: list[str]
    chunks: int
    seconds: float


class ErrorBody(BaseModel):
    """Every error response: a machine-readable code and a message for people."""

    error: str = Field(examples=["document_not_found"])
    detail: str = Field(examples=["no document 'x' in collection 'articles'"])


class Health(BaseModel):
    """Liveness."""

    status: str
    collections: int


class CollectionInfo(BaseModel):
    """A collection and its size."""

    name: str
    documents: int
    chunks: int
    model: str = Field(description="Embedding model its vectors were made with.")


class CollectionList(BaseModel):
    """Every collection, and the one used when none is named."""

    collections: list[CollectionInfo]
    default: str


class UrlIn(BaseModel):
    """A web page to fetch and ingest."""

    url: str = Field(min_length=8, max_length=4096, examples=["https://example.org/article"])
    collection: str | None = None


class SearchRequest(BaseModel):
    """A query for `POST /v1/search`: retrieval only, no answer."""

    query: str = Field(description="What to search for, in plain language.",
                       examples=["Who co-leads the lab?"])
    collection: str | None = Field(default=None,
                                   description="Collection to search (default: articles).")
    top_k: int | None = Field(default=None, ge=1, le=100, strict=True,
                              description="Passages to return.")
    filters: FiltersIn | None = None
    as_of: AsOf = None


class SearchPassage(Passage):
    """A retrieved passage with its document's link."""

    url: str | None = Field(default=None, description="Link to the document, when known.")


class SearchResult(BaseModel):
    """The passages `POST /v1/ask` would answer from, best first."""

    query: str = Field(description="The query as sent, whitespace normalised.")
    collection: str = Field(description="The collection searched.")
    passages: list[SearchPassage] = Field(
        default_factory=list,
        description="Retrieved chunks, best first; `text` is exactly document.text[start:end].",
    )


class OpenAIError(BaseModel):
    """An error in OpenAI's shape."""

    message: str
    type: str
    param: str | None = None
    code: str


class OpenAIErrorBody(BaseModel):
    """The body of an error from the OpenAI-compatible routes, and of every 401."""

    error: OpenAIError
    detail: str


class CollectionIn(BaseModel):
    """A collection to create."""

    name: str = Field(description="3-492 characters: letters, digits, '.', '_' and '-', "
                      "starting and ending with a letter or digit.")


class CollectionDeleted(BaseModel):
    """What a collection delete removed."""

    deleted: str


class Ready(BaseModel):
    """Readiness: `ready` once the model and store are loaded and the store answers."""

    status: Literal["ready", "starting", "store_unavailable"]
    worker: int | None = Field(default=None, description="Process id of the worker answering.")


class Limits(BaseModel):
    """What this server accepts, so clients can check before sending."""

    max_question_chars: int = Field(
        description="Longest question, in characters after runs of whitespace become one "
                    "space (CITEQA_MAX_QUESTION_CHARS).", examples=[2000])
    max_upload_bytes: int = Field(
        description="Largest uploaded file (CITEQA_MAX_UPLOAD_BYTES).", examples=[20_000_000])
    max_verify_chars: int = Field(
        description="Longest text `POST /v1/verify` checks, in characters "
                    "(CITEQA_MAX_VERIFY_CHARS).", examples=[1_000_000])
    max_verify_sentences: int = Field(
        description="Most sentences a text to verify may have "
                    "(CITEQA_MAX_VERIFY_SENTENCES).", examples=[5_000])
