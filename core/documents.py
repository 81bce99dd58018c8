"""Data that flows through ingestion: `Document -> Chunk`, plus what was skipped and why."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInput

# Limits on what one document may carry, whatever its source (upload, JSONL, front matter,
# a fetched page). Ids travel in every answer, URL and log line; metadata is stored as JSON and
# returned by every listing, so both are bounded here, where every source passes.
MAX_ID_CHARS = 512
MAX_METADATA_DEPTH = 20
MAX_METADATA_BYTES = 64 * 1024

# C0 and C1 control characters, DEL, and the bidi embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069): they rewrite terminals and log lines, and make one id look
# like another.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class InvalidDocument(InvalidInput, ValueError):
    """A document that cannot be stored. A ValueError too, so every loader turns it into a
    `SkippedSource` that names the file or line."""

    code = "invalid_document"


def printable(text: str) -> str:
    """`text` with control and bidi characters shown as escapes (`\\x1b`, `\\u202e`), fit
    for a terminal or a log line."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _shown_id(doc_id: str) -> str:
    """A bad id, shortened and escaped, for an error message."""
    return "'" + printable(doc_id[:80]) + ("...'" if len(doc_id) > 80 else "'")


def _check_id(doc_id: str) -> None:
    if len(doc_id) > MAX_ID_CHARS:
        raise InvalidDocument(f"document id {_shown_id(doc_id)} is {len(doc_id):,} characters "
                              f"long; the limit is {MAX_ID_CHARS}", code="invalid_id")
    if doc_id in (".", ".."):
        raise InvalidDocument(f"{doc_id!r} cannot be a document id: it reads as a folder in "
                              "every URL; give the document a name", code="invalid_id")
    bad = _UNSAFE.search(doc_id)
    if bad:
        raise InvalidDocument(
            f"document id {_shown_id(doc_id)} contains the control or bidi character "
            f"U+{ord(bad.group()):04X}; ids must be plain printable text", code="invalid_id")
    # Refused, not silently normalised: an id is the key the caller uses to show and delete
    # the document again, so changing it behind their back would make it unreachable.
    if not unicodedata.is_normalized("NFC", doc_id):
        raise InvalidDocument(
            f"document id {_shown_id(doc_id)} is not in Unicode NFC form; send it NFC "
            f"normalised ({unicodedata.normalize('NFC', doc_id)!r}) so that look-alike ids "
            "cannot coexist", code="invalid_id")


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests lists and objects; stops counting past `limit`."""
    deepest = 0
    # Iterative, so a hostile document cannot exhaust the interpreter's stack.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list | tuple):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level) for child in children)
    return deepest


def _check_metadata(doc_id: str, metadata: dict[str, Any]) -> None:
    depth = _depth(metadata, MAX_METADATA_DEPTH)
    if depth > MAX_METADATA_DEPTH:
        raise InvalidDocument(
            f"document {_shown_id(doc_id)}: its metadata nests more than {MAX_METADATA_DEPTH} "
            f"levels deep (got at least {depth}); the limit is {MAX_METADATA_DEPTH}",
            code="metadata_too_deep")
    size = len(json.dumps(metadata, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InvalidDocument(
            f"document {_shown_id(doc_id)}: its metadata is {size:,} bytes as JSON; the limit "
            f"is {MAX_METADATA_BYTES:,}", code="metadata_too_large")


@dataclass(frozen=True)
class Document:
    """One article: its full text is what every offset refers to."""

    id: str
    text: str
    title: str = ""
    url: str | None = None
    date: str | None = None
    source: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def stored(cls, **fields: Any) -> Document:
        """A document read back from storage, not checked again: it was checked when it was
        stored, and one stored before a check existed must still be listed and deleted."""
        document = object.__new__(cls)
        for name, value in {"title": "", "url": None, "date": None, "source": None,
                            "metadata": {}, **fields}.items():
            object.__setattr__(document, name, value)
        return document

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise InvalidDocument("a document needs a non-empty id", code="invalid_id")
        _check_id(self.id)
        if not self.text.strip():
            raise InvalidDocument(f"document {_shown_id(self.id)} has no text")
        _check_metadata(self.id, self.metadata)

    @property
    def content_hash(self) -> str:
        """Hash of everything stored for the document; a change means re-ingestion."""
        payload = json.dumps(
            [self.text, self.title, self.url, self.date, self.source, self.metadata],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A span of a document: `document.text[start:end] == text`."""

    doc_id: str
    index: int
    start: int
    end: int
    text: str

    def chunk_id(self, content_hash: str) -> str:
        """Id that changes with the document's content, so old and new chunks never collide."""
        return f"{self.doc_id}::{content_hash[:12]}::{self.index}"


def doc_of_chunk(chunk_id: str) -> str:
    """The id of the document a chunk id (`Chunk.chunk_id`) belongs to."""
    return chunk_id.rsplit("::", 2)[0]


def version_of_chunk(chunk_id: str) -> str:
    """The content-hash part of a chunk id (`Chunk.chunk_id`): which version of its document
    the chunk is of ("" for an id not made by `Chunk.chunk_id`)."""
    parts = chunk_id.rsplit("::", 2)
    return parts[1] if len(parts) == 3 else ""


@dataclass(frozen=True)
class SkippedSource:
    """A file or line that could not be ingested, with the reason shown to the user."""

    name: str
    reason: str
    doc_id: str | None = None


@dataclass
class IngestReport:
    """What one ingestion run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    chunks: int = 0
    seconds: float = 0.0

    def summary(self, *, reasons: bool = True) -> str:
        """One line: added / updated / unchanged / skipped (with the first reasons, unless
        they were shown already) / chunks / seconds."""
        parts = [
            f"added {len(self.added)}",
            f"updated {len(self.updated)}",
            f"unchanged {len(self.unchanged)}",
        ]
        if self.skipped and reasons:
            why = "; ".join(f"{s.name}: {s.reason}" for s in self.skipped[:5])
            more = f"; +{len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            parts.append(f"skipped {len(self.skipped)} ({why}{more})")
        else:
            parts.append(f"skipped {len(self.skipped)}")
        if self.pruned:
            parts.append(f"pruned {len(self.pruned)}")
        parts.append(f"{self.chunks} chunks embedded")
        parts.append(f"{self.seconds:.1f} s")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by the API."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
            "pruned": self.pruned,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Filters:
    """Metadata filters applied to both the dense and the lexical search."""

    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    # Documents dated after this are left out; unlike date_to, undated documents stay.
    as_of: str | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to", "as_of"):
            value = getattr(self, name)
            if value is not None and date_number(value) is None:
                raise ValueError(f"{name} must be a date like 2026-01-31, got {value!r}")
        start = date_number(self.date_from) if self.date_from else None
        end = date_number(self.date_to) if self.date_to else None
        if start is not None and end is not None and start > end:
            raise InvalidInput(f"date_from {self.date_from} is after date_to {self.date_to}, "
                               "so no document can match; swap them", code="empty_date_range")

    @property
    def empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.sources or self.doc_ids or self.date_from or self.date_to
                    or self.as_of)


@dataclass(frozen=True)
class StoredDocument:
    """A document as the catalog keeps it, with its chunk count."""

    document: Document
    content_hash: str
    chunks: int
    ingested_at: str


@dataclass(frozen=True)
class DocumentInfo:
    """A document as listed: everything the catalog knows of it but its text."""

    id: str
    title: str
    url: str | None
    date: str | None
    source: str | None
    metadata: dict[str, Any]
    chunks: int
    ingested_at: str
    size: int  # characters of text


@dataclass(frozen=True)
class DocumentPage:
    """One page of a listing, in document-id order.

    `next_cursor` is the id to pass as `cursor` for the next page (None on the last one).
    Paging by id keeps every document that exists throughout the listing on exactly one page,
    whatever is added meanwhile; a document added behind the cursor shows up on the next pass.
    """

    documents: list[DocumentInfo]
    next_cursor: str | None
    total: int


@dataclass(frozen=True)
class Sentence:
    """A sentence of a document with its vector, precomputed at ingestion."""

    start: int
    end: int
    vector: Any  # np.ndarray of float32, unit length


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready to store: chunks, their vectors and tokens, and sentence vectors."""

    document: Document
    chunks: list[Chunk]
    chunk_vectors: Any  # np.ndarray, one row per chunk
    chunk_tokens: list[list[str]]
    sentences: list[tuple[int, int]]
    sentence_vectors: Any  # np.ndarray, one row per sentence


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk joined with its document, as retrieval returns it."""

    chunk_id: str
    index: int
    start: int
    end: int
    document: Document
    sentences: tuple[Sentence, ...] = ()

    @property
    def text(self) -> str:
        """The chunk's text, sliced from its document."""
        return self.document.text[self.start:self.end]


def date_number(value: str | None) -> int | None:
    """`2026-01-31` (or a longer ISO timestamp) as 20260131, for range filters; else None."""
    if not value:
        return None
    digits = value.strip()[:10].replace("/", "-").split("-")
    try:
        if len(digits) == 3:
            year, month, day = (int(part) for part in digits)
        elif len(digits) == 2:
            year, month, day = int(digits[0]), int(digits[1]), 1
        elif len(digits) == 1 and len(digits[0]) == 4:
            year, month, day = int(digits[0]), 1, 1
        else:
            return None
    except ValueError:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1000 <= year <= 9999):
        return None
    return year * 10000 + month * 100 + day
