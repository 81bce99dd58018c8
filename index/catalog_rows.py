"""What the catalog's queries return, and the SQL pieces both kinds of catalog build them
with: plain values, shared by `index.catalog` and its SQLite and PostgreSQL kinds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from core.documents import Document, Filters, StoredDocument, date_number


@dataclass(frozen=True)
class CollectionRecord:
    """A collection as the catalog records it."""

    name: str
    model: str
    dimension: int
    version: int
    created_at: str


@dataclass(frozen=True)
class LexicalRow:
    """What the lexical index needs of a chunk."""

    chunk_id: str
    doc_id: str
    tokens: list[str]


def filter_clauses(collection: str, filters: Filters) -> tuple[str, list[object]]:
    """The SQL condition (and its parameters) for the documents that pass the filters."""
    clauses = ["collection = ?"]
    params: list[object] = [collection]
    if filters.sources:
        clauses.append(f"source IN ({','.join('?' * len(filters.sources))})")
        params.extend(filters.sources)
    if filters.doc_ids:
        clauses.append(f"doc_id IN ({','.join('?' * len(filters.doc_ids))})")
        params.extend(filters.doc_ids)
    if filters.date_from:
        clauses.append("date_num >= ?")
        params.append(date_number(filters.date_from))
    if filters.date_to:
        clauses.append("date_num <= ?")
        params.append(date_number(filters.date_to))
    if filters.as_of:
        # Undated documents stay: only a date after as_of leaves a document out.
        clauses.append("(date_num IS NULL OR date_num <= ?)")
        params.append(date_number(filters.as_of))
    return " AND ".join(clauses), params


def stored_document(row: tuple) -> StoredDocument:
    """A document row (id, title, url, date, source, metadata, text, hash, chunks, ingested)."""
    doc_id, title, url, date, source, metadata, text, content_hash, chunks, ingested_at = row
    document = Document.stored(
        id=doc_id, text=text, title=title, url=url, date=date, source=source,
        metadata=json.loads(metadata),
    )
    return StoredDocument(document, content_hash, chunks, ingested_at)


def now() -> str:
    """The time of a write, as the catalog stores it."""
    return datetime.now(UTC).isoformat(timespec="seconds")
