"""The catalog's reads for questions: chunks with their documents and sentence vectors,
filters and dates, and the chunk tokens and change log the lexical index is built from.

Separate from `index.catalog` (collections, document writes and listings) because answering
only ever reads these, and each query here is on a question's path. `CatalogReads` is the base
`Catalog` inherits: the queries are the same SQL for SQLite and PostgreSQL, run on the
connection each kind provides.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from core.documents import ChunkRecord, Document, Filters, Sentence
from index.catalog_rows import LexicalRow, filter_clauses, stored_document
from index.schema import Session


class CatalogReads(ABC):
    """What a question reads from the catalog, on the connection each kind of catalog opens."""

    @abstractmethod
    def _connect(self) -> Session:
        """This thread's connection."""

    def lexical_rows(self, collection: str, doc_ids: Sequence[str] | None = None
                     ) -> list[LexicalRow]:
        """Every chunk's (or these documents' chunks') id, document and search tokens, in a
        stable order."""
        return list(self.iter_lexical_rows(collection, doc_ids))

    def iter_lexical_rows(self, collection: str, doc_ids: Sequence[str] | None = None
                          ) -> Iterator[LexicalRow]:
        """`lexical_rows` one at a time, so a million chunks' tokens are never all in memory
        (as lists of strings they took gigabytes)."""
        wanted = None if doc_ids is None else sorted(set(doc_ids))
        # In slices of 500 documents, under SQLite's parameter limit.
        for offset in range(0, 1 if wanted is None else len(wanted), 500):
            window = [] if wanted is None else wanted[offset:offset + 500]
            only = f" AND doc_id IN ({','.join('?' * len(window))})" if window else ""
            for chunk_id, doc_id, tokens in self._connect().execute(
                    f"SELECT chunk_id, doc_id, tokens FROM chunks WHERE collection = ?{only} "
                    "ORDER BY doc_id, idx", (collection, *window)):
                yield LexicalRow(chunk_id, doc_id, tokens.split())

    def changed_documents(self, collection: str, since: int, upto: int) -> list[str] | None:
        """Ids of the documents written or deleted after version `since` up to `upto`; None if
        the log of changes does not reach back to `since` (then read everything)."""
        row = self._connect().execute(
            "SELECT version, changes_from FROM collections WHERE name = ?", (collection,)
        ).fetchone()
        if row is None or since > int(row[0]) or (row[1] is not None and since < int(row[1])):
            return None
        rows = self._connect().execute(
            "SELECT DISTINCT doc_id FROM changes WHERE collection = ? AND version > ? "
            "AND version <= ?",
            (collection, since, upto),
        )
        return [found[0] for found in rows]

    def chunk_records(self, collection: str, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """Chunks joined with their documents, by chunk id; unknown ids are left out."""
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._connect().execute(
            f'SELECT c.chunk_id, c.idx, c.start, c."end", d.doc_id, d.title, d.url, d.date, '
            f"d.source, d.metadata, d.text, d.content_hash, d.chunk_count, d.ingested_at "
            f"FROM chunks c JOIN documents d "
            f"ON d.collection = c.collection AND d.doc_id = c.doc_id "
            f"WHERE c.collection = ? AND c.chunk_id IN ({marks})",
            (collection, *chunk_ids),
        ).fetchall()
        documents: dict[str, Document] = {}
        spans: dict[str, tuple[int, int]] = {}
        for _, _, start, end, *doc_row in rows:
            doc_id = doc_row[0]
            if doc_id not in documents:
                documents[doc_id] = stored_document(tuple(doc_row)).document
            low, high = spans.get(doc_id, (start, end))
            spans[doc_id] = (min(low, start), max(high, end))
        sentences = self._sentences(collection, spans)
        records = {}
        for chunk_id, idx, start, end, doc_id, *_ in rows:
            inside = tuple(s for s in sentences.get(doc_id, ()) if s.end > start and s.start < end)
            records[chunk_id] = ChunkRecord(chunk_id, idx, start, end, documents[doc_id], inside)
        return records

    def _sentences(self, collection: str, spans: dict[str, tuple[int, int]]
                   ) -> dict[str, list[Sentence]]:
        """Document id -> its sentences with their vectors, those overlapping the span given
        for it (a question reads its candidate chunks' sentences, not every sentence of a long
        article; (0, len(text)) reads them all)."""
        if not spans:
            return {}
        # A join on a list of (document, span) rows, that list as the outer loop (SQLite's
        # CROSS JOIN fixes the order): one search of the primary key per document. Written as
        # ORs, or as a plain JOIN of a long list, SQLite read the whole collection instead (70
        # ms against 1 ms at 100k chunks).
        spans_rows = ", ".join(["(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS INTEGER))"]
                               * len(spans))
        found = self._connect().execute(
            f"WITH wanted (doc_id, low, high) AS (VALUES {spans_rows}) "
            f'SELECT s.doc_id, s.start, s."end", s.vector FROM wanted w CROSS JOIN sentences s '
            f"WHERE s.collection = ? AND s.doc_id = w.doc_id AND s.start < w.high "
            f'AND s."end" > w.low ORDER BY s.doc_id, s.start',
            (*(value for doc_id, span in spans.items() for value in (doc_id, *span)),
             collection)).fetchall()
        out: dict[str, list[Sentence]] = {}
        if not found:
            return out
        # One conversion for all the rows: per-row numpy calls cost more than the query.
        vectors = np.frombuffer(b"".join(row[3] for row in found), dtype=np.float16)
        vectors = vectors.reshape(len(found), -1).astype(np.float32)
        for (doc_id, start, end, _), vector in zip(found, vectors, strict=True):
            out.setdefault(doc_id, []).append(Sentence(start, end, vector))
        return out

    def matching_doc_ids(self, collection: str, filters: Filters) -> set[str]:
        """Ids of the documents that pass the filters."""
        where, params = filter_clauses(collection, filters)
        rows = self._connect().execute(f"SELECT doc_id FROM documents WHERE {where}", params)
        return {row[0] for row in rows}

    def count_matching(self, collection: str, filters: Filters, *, undated: bool = False
                       ) -> int:
        """How many documents pass the filters (with `undated`, only those without a date)."""
        where, params = filter_clauses(collection, filters)
        if undated:
            where += " AND date_num IS NULL"
        row = self._connect().execute(
            f"SELECT COUNT(*) FROM documents WHERE {where}", params).fetchone()
        return int(row[0])

    def dated_after(self, collection: str, date_num: int) -> list[str]:
        """Ids of the documents dated after `date_num` (as 20260131)."""
        rows = self._connect().execute(
            "SELECT doc_id FROM documents WHERE collection = ? AND date_num > ?",
            (collection, date_num))
        return [row[0] for row in rows]

    def latest_date(self, collection: str) -> int | None:
        """The latest document date (as 20260131), or None if no document has one."""
        row = self._connect().execute(
            "SELECT MAX(date_num) FROM documents WHERE collection = ?", (collection,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def undated(self, collection: str) -> list[str]:
        """Ids of the documents without a date."""
        rows = self._connect().execute(
            "SELECT doc_id FROM documents WHERE collection = ? AND date_num IS NULL",
            (collection,))
        return [row[0] for row in rows]

