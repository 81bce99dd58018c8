"""The segments of the lexical index (each the postings of some chunks, stamped with the catalog
versions it covers, saved as one file) and a version of the index made of them.

A segment holds raw term frequencies and chunk lengths, not finished BM25 scores: the
collection-wide statistics (chunk count, average length, document frequency) change with every
write, so scores are computed at query time from the statistics summed over all segments.
"""

from __future__ import annotations

import itertools
import math
import os
import zipfile
from array import array
from collections import Counter
from collections.abc import Iterable
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
          chunks: Iterable[LexicalRow], replaces: frozenset[str] = frozenset()) -> Segment:
    """A segment of these chunks, in their order (read once, so a stream will do)."""
    vocabulary: dict[str, int] = {}
    # Typed arrays, 4-8 bytes an entry: Python lists of ints took about 36 bytes a posting,
    # over 5 GB for a million chunks.
    columns = array("i")
    rows = array("i")
    counts = array("i")
    lengths = array("d")
    chunk_ids: list[str] = []
    doc_ids: list[str] = []
    for row, chunk in enumerate(chunks):
        lengths.append(len(chunk.tokens))
        chunk_ids.append(chunk.chunk_id)
        doc_ids.append(chunk.doc_id)
        for token, count in Counter(chunk.tokens).items():
            columns.append(vocabulary.setdefault(token, len(vocabulary)))
            rows.append(row)
            counts.append(count)
    column_array = np.frombuffer(columns, dtype=np.int32)
    # Stable, so each term's rows stay ascending.
    order = np.argsort(column_array, kind="stable")
    pointers = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.cumsum(np.bincount(column_array, minlength=len(vocabulary)), out=pointers[1:])
    return Segment(kind, from_version, to_version, analyser, vocabulary, pointers,
                   _sorted(rows, order, np.int64), _sorted(counts, order, np.float64),
                   np.frombuffer(lengths, dtype=np.float64).copy(), chunk_ids, doc_ids, replaces)


def _sorted(values: array[int], order: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """The values in `order`, as `dtype` (the types the saved segments have always had)."""
    return np.frombuffer(values, dtype=np.int32)[order].astype(dtype)


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


def _member(doc_array: np.ndarray, doc_ids: set[str] | frozenset[str]) -> np.ndarray:
    """Whether each entry of `doc_array` (one document id per chunk) is one of `doc_ids`."""
    # A set lookup per chunk: numpy's isin on strings (object arrays) took seconds at 100k.
    return np.fromiter((doc_id in doc_ids for doc_id in doc_array), dtype=bool,
                       count=len(doc_array))


def idf_of(count: int, frequency: int) -> float:
    """BM25 (Lucene) inverse document frequency of a term in `frequency` of `count` chunks."""
    return math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))


_LAYOUTS = itertools.count()
_K1 = 1.5
_B = 0.75


@dataclass(frozen=True)
class State:
    """One version of the lexical index: its segments, which of their rows are live, and the
    collection-wide statistics."""

    version: int
    parts: tuple[Segment, ...]
    offsets: np.ndarray
    alive: np.ndarray
    lengths: np.ndarray
    chunk_ids: list[str]
    doc_ids: np.ndarray
    count: int
    average_length: float
    norms: np.ndarray
    """Each row's BM25 length normalisation, computed once per version instead of per query."""
    whole: tuple[bool, ...]
    """Whether each segment has every row live (its postings then need no filtering)."""
    layout: int = field(default_factory=lambda: next(_LAYOUTS))

    @property
    def count_total(self) -> int:
        return len(self.alive)

    @property
    def dead(self) -> int:
        return len(self.alive) - self.count

    @classmethod
    def of(cls, base: Segment) -> State:
        alive = np.ones(len(base), dtype=bool)
        return cls._with(base.to_version, (base,), alive, base.lengths, list(base.chunk_ids),
                         np.array(base.doc_ids, dtype=object))

    @classmethod
    def _with(cls, version: int, parts: tuple[Segment, ...], alive: np.ndarray,
              lengths: np.ndarray, chunk_ids: list[str], doc_ids: np.ndarray) -> State:
        offsets = np.cumsum([0, *(len(part) for part in parts)])
        count = int(alive.sum())
        average = float(lengths[alive].sum() / count) if count else 0.0
        norms = _K1 * (1 - _B + _B * lengths / (average or 1.0))
        whole = tuple(bool(alive[offset:offset + len(part)].all())
                      for part, offset in zip(parts, offsets, strict=False))
        return cls(version, parts, offsets, alive, lengths, chunk_ids, doc_ids, count, average,
                   norms, whole)

    def apply(self, delta: Segment) -> State:
        """This state with a delta's documents replaced by its chunks."""
        alive = np.concatenate([self.alive, np.ones(len(delta), dtype=bool)])
        for doc_id in delta.replaces:
            for part, offset in zip(self.parts, self.offsets, strict=False):
                alive[offset + part.rows_of(doc_id)] = False
        doc_ids = np.concatenate([self.doc_ids, np.array(delta.doc_ids, dtype=object)])
        return State._with(delta.to_version, (*self.parts, delta), alive,
                            np.concatenate([self.lengths, delta.lengths]),
                            self.chunk_ids + delta.chunk_ids, doc_ids)

    def _postings(self, token: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """The live rows (global) holding the token, and how often, in each segment."""
        found = []
        for part, offset, whole in zip(self.parts, self.offsets, self.whole, strict=False):
            postings = part.postings(token)
            if postings is None:
                continue
            rows, frequencies = postings
            rows = rows + offset if offset else rows
            if whole:
                found.append((rows, frequencies))
                continue
            live = self.alive[rows]
            if live.any():
                found.append((rows[live], frequencies[live]))
        return found

    def frequency(self, token: str) -> int:
        """How many live chunks hold the token."""
        return sum(len(rows) for rows, _ in self._postings(token))

    def scores(self, tokens: list[str]) -> np.ndarray | None:
        """BM25 (Lucene's variant, as bm25s computes it) of every row; None if no chunk holds
        any of the tokens."""
        scores: np.ndarray | None = None
        for token in tokens:
            postings = self._postings(token)
            if not postings:
                continue
            if scores is None:
                scores = np.zeros(len(self.alive), dtype=np.float64)
            weight = idf_of(self.count, sum(len(rows) for rows, _ in postings))
            for rows, frequencies in postings:
                scores[rows] += weight * frequencies / (frequencies + self.norms[rows])
        return scores

    def rows(self, doc_ids: set[str] | frozenset[str]) -> np.ndarray:
        """The live rows of these documents' chunks."""
        return np.flatnonzero(_member(self.doc_ids, doc_ids) & self.alive)
