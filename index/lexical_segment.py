"""One segment of the lexical index: the postings of some chunks, stamped with the catalog
versions it covers, saved as one file.

A segment holds raw term frequencies and chunk lengths, not finished BM25 scores: the
collection-wide statistics (chunk count, average length, document frequency) change with every
write, so scores are computed at query time from the statistics summed over all segments.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.catalog_rows import LexicalRow

BASE = "base"
DELTA = "delta"


@dataclass(frozen=True)
class Segment:
    """Postings (term -> rows, frequencies) of some chunks, in a compressed-column layout."""

    kind: str
    """BASE (every chunk at `to_version`) or DELTA (the chunks of documents written since)."""
    from_version: int
    to_version: int
    analyser: int
    vocabulary: dict[str, int]
    pointers: np.ndarray
    rows: np.ndarray
    frequencies: np.ndarray
    lengths: np.ndarray
    chunk_ids: list[str]
    doc_ids: list[str]
    replaces: frozenset[str]
    """Documents whose chunks in earlier segments this one supersedes (written or deleted)."""
    _by_doc: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows (in this segment) holding the token and how often; None if none does."""
        column = self.vocabulary.get(token)
        if column is None:
            return None
        start, end = self.pointers[column], self.pointers[column + 1]
        return self.rows[start:end], self.frequencies[start:end]

    def rows_of(self, doc_id: str) -> np.ndarray:
        """The rows of one document's chunks in this segment."""
        if not self._by_doc and self.doc_ids:
            grouped: dict[str, list[int]] = {}
            for row, owner in enumerate(self.doc_ids):
                grouped.setdefault(owner, []).append(row)
            self._by_doc.update({owner: np.array(found, dtype=np.int64)
                                 for owner, found in grouped.items()})
        return self._by_doc.get(doc_id, np.empty(0, dtype=np.int64))

    @property
    def file_name(self) -> str:
        """Its file's name: the stamp a loader chains segments by."""
        return f"{self.kind}-{self.from_version}-{self.to_version}.npz"

    def save(self, folder: Path) -> Path:
        """Write to a temporary file and rename it into place, so no reader sees half of it."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.file_name
        staging = folder / f".tmp-{os.getpid()}-{self.file_name}"
        with staging.open("wb") as handle:
            np.savez(
                handle,
                stamp=np.array([self.from_version, self.to_version, self.analyser]),
                terms=np.array(list(self.vocabulary), dtype=str),
                pointers=self.pointers, rows=self.rows, frequencies=self.frequencies,
                lengths=self.lengths, chunk_ids=np.array(self.chunk_ids, dtype=str),
                doc_ids=np.array(self.doc_ids, dtype=str),
                replaces=np.array(sorted(self.replaces), dtype=str),
            )
        staging.rename(target)
        return target


def build(kind: str, from_version: int, to_version: int, analyser: int,
          chunks: Sequence[LexicalRow], replaces: frozenset[str] = frozenset()) -> Segment:
    """A segment of these chunks, in their order."""
    vocabulary: dict[str, int] = {}
    columns: list[int] = []
    rows: list[int] = []
    counts: list[int] = []
    lengths = np.empty(len(chunks), dtype=np.float64)
    for row, chunk in enumerate(chunks):
        lengths[row] = len(chunk.tokens)
        for token, count in Counter(chunk.tokens).items():
            columns.append(vocabulary.setdefault(token, len(vocabulary)))
            rows.append(row)
            counts.append(count)
    column_array = np.array(columns, dtype=np.int64)
    # Stable, so each term's rows stay ascending.
    order = np.argsort(column_array, kind="stable")
    pointers = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.cumsum(np.bincount(column_array, minlength=len(vocabulary)), out=pointers[1:])
    return Segment(kind, from_version, to_version, analyser, vocabulary, pointers,
                   np.array(rows, dtype=np.int64)[order],
                   np.array(counts, dtype=np.float64)[order], lengths,
                   [chunk.chunk_id for chunk in chunks], [chunk.doc_id for chunk in chunks],
                   replaces)


def load(path: Path) -> Segment | None:
    """The segment in a file, or None if the file is not one (a foreign or damaged file)."""
    kind = path.name.split("-", 1)[0]
    if kind not in (BASE, DELTA):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            from_version, to_version, analyser = (int(x) for x in data["stamp"])
            terms = data["terms"].tolist()
            return Segment(
                kind, from_version, to_version, analyser,
                {term: column for column, term in enumerate(terms)},
                data["pointers"], data["rows"], data["frequencies"], data["lengths"],
                data["chunk_ids"].tolist(), data["doc_ids"].tolist(),
                frozenset(data["replaces"].tolist()))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
