"""What each vector carries besides itself (Chroma metadata), and Chroma's `where` for a filter.

Apart from `index.vectors` (the client and the searches) because the store writes metadata and
`index.filtering` builds `where` clauses without needing the Chroma client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.documents import Chunk, Document, Filters, date_number

Metadata = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class DateCut:
    """What `Filters.as_of` leaves out, as the catalog knows it: vectors carry no such list."""

    after: Sequence[str]
    """Documents dated after `as_of`."""
    undated: Sequence[str]
    """Documents without a date (never left out)."""


def chunk_metadata(document: Document, chunk: Chunk) -> Metadata:
    """What a chunk vector carries: its place in its document, and what filters match."""
    metadata: Metadata = {
        "doc_id": document.id,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "title": document.title,
    }
    if document.source:
        metadata["source"] = document.source
    if document.url:
        metadata["url"] = document.url
    date_num = date_number(document.date)
    if date_num is not None:
        metadata["date"] = document.date or ""
        metadata["date_num"] = date_num
    return metadata


def chroma_where(filters: Filters | None, cut: DateCut | None = None) -> dict[str, Any] | None:
    """The Chroma `where` of the filters; `as_of` needs the `cut` the catalog gives for it."""
    if filters is None:
        return None
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.doc_ids:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids)}})
    if filters.date_from:
        clauses.append({"date_num": {"$gte": date_number(filters.date_from)}})
    if filters.date_to:
        clauses.append({"date_num": {"$lte": date_number(filters.date_to)}})
    if filters.as_of:
        assert cut is not None, "as_of needs the catalog's DateCut"
        clauses.append(_as_of_clause(date_number(filters.as_of), cut))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _as_of_clause(number: int | None, cut: DateCut) -> dict[str, Any]:
    # Chroma cannot match a missing key and an undated document's vectors carry no date_num,
    # so the catalog names the documents to leave out (or keep): nothing new is stored on the
    # vectors, and data folders made before as_of existed work as they are.
    if not cut.undated:
        return {"date_num": {"$lte": number}}
    if len(cut.after) <= len(cut.undated):
        return {"doc_id": {"$nin": list(cut.after)}}
    return {"$or": [{"date_num": {"$lte": number}}, {"doc_id": {"$in": list(cut.undated)}}]}
