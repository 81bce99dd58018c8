"""The lexical (BM25) index of a collection, rebuilt from the catalog and persisted beside it.

The index is a pure function of the catalog's chunks, so it is never the source of truth: it is
stamped with the catalog version and the analyser version of the tokens it was built from, and
rebuilt when either differs (a stamp from before the analyser was recorded is rebuilt once).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from index.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LexicalHit:
    """A chunk found by BM25."""

    chunk_id: str
    score: float


@dataclass(frozen=True)
class RowMask:
    """The rows (chunk positions) of a set of documents in one version of the lexical index."""

    version: int
    rows: np.ndarray
    total: int
    """How many chunks that version holds."""


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """The positions of the `k` best positive scores, best first; ties in position order, so
    a filter that keeps a chunk never changes its place among those it kept."""
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > k:
        cut = len(candidates) - k
        kth = np.partition(scores[candidates], cut)[cut]
        candidates = candidates[scores[candidates] >= kth]
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


def _rows(doc_array: np.ndarray, doc_ids: set[str] | frozenset[str]) -> np.ndarray:
    """The positions in `doc_array` (one document id per chunk) of these documents' chunks."""
    # A set lookup per chunk: numpy's isin on strings (object arrays) took seconds at 100k.
    kept = np.fromiter((doc_id in doc_ids for doc_id in doc_array), dtype=bool,
                       count=len(doc_array))
    return np.flatnonzero(kept)


_STAGING = ".lexical-"


def _remove_stale_staging(parent: Path) -> None:
    """Remove staging folders (named after their process) of processes that died mid-save."""
    for path in parent.glob(f"{_STAGING}*"):
        owner = path.name[len(_STAGING):].split("-", 1)[0]
        if owner.isdigit() and _alive(int(owner)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LexicalIndex:
    """BM25 over one collection's chunks, kept in step with the catalog by version."""

    def __init__(self, catalog: Catalog, collection: str, folder: Path) -> None:
        self.catalog = catalog
        self.collection = collection
        self.folder = folder
        self._lock = threading.Lock()
        self._version = -2
        self._bm25: bm25s.BM25 | None = None
        self._chunk_ids: list[str] = []
        self._doc_ids: np.ndarray = np.array([], dtype=object)

    def search(self, tokens: list[str], k: int, *,
               allowed_docs: set[str] | frozenset[str] | None = None,
               mask: RowMask | None = None) -> list[LexicalHit]:
        """The best `k` chunks for the query tokens, optionally only from `allowed_docs`;
        their `mask` (`rows_of`), if it is of the current version, saves finding their rows."""
        self.refresh()
        bm25, chunk_ids, doc_ids, version = (
            self._bm25, self._chunk_ids, self._doc_ids, self._version)
        if bm25 is None or not chunk_ids or not tokens or k <= 0:
            return []
        known = [t for t in tokens if t in bm25.vocab_dict]
        if not known:
            return []
        scores = bm25.get_scores(known)
        rows: np.ndarray | None = None
        if mask is not None and mask.version == version:
            rows = mask.rows
        elif allowed_docs is not None:
            rows = _rows(doc_ids, allowed_docs)
        if rows is not None:
            # Only the allowed chunks compete, so none of them loses its place to another.
            scores = scores[rows]
        top = _best(scores, k)
        positions = top if rows is None else rows[top]
        return [LexicalHit(chunk_ids[position], float(scores[i]))
                for i, position in zip(top, positions, strict=True)]

    def chunk_ids_of(self, mask: RowMask) -> list[str] | None:
        """The chunk ids at a mask's rows; None if the index has changed since it was made."""
        chunk_ids, version = self._chunk_ids, self._version
        if mask.version != version:
            return None
        return [chunk_ids[row] for row in mask.rows]

    def rows_of(self, doc_ids: set[str] | frozenset[str]) -> RowMask:
        """The rows of these documents' chunks in the current version, for `search`."""
        self.refresh()
        doc_array, version = self._doc_ids, self._version
        return RowMask(version, _rows(doc_array, doc_ids), len(doc_array))

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each token over the collection's chunks.

        A token no chunk holds gets the highest weight: the collection cannot answer with it.
        """
        self.refresh()
        bm25 = self._bm25
        count = len(self._chunk_ids)
        # Column t of BM25's sparse score matrix holds one entry per chunk containing token t.
        vocabulary = bm25.vocab_dict if bm25 is not None else {}
        pointers = bm25.scores["indptr"] if bm25 is not None else None
        weights = {}
        for token in tokens:
            index = vocabulary.get(token)
            frequency = 0 if index is None or pointers is None else int(
                pointers[index + 1] - pointers[index])
            weights[token] = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
        return weights

    def refresh(self) -> None:
        """Load or rebuild the index if the catalog has changed since it was built."""
        version = self.catalog.version(self.collection)
        if version == self._version:
            return
        with self._lock:
            if version == self._version:
                return
            if not self._load(version):
                self._build(version)

    def _load(self, version: int) -> bool:
        stamp = self.folder / "version.json"
        try:
            meta = json.loads(stamp.read_text())
            if (meta.get("version"), meta.get("analyser")) != (
                    version, self.catalog.analyser_version):
                return False
            chunk_ids = json.loads((self.folder / "chunks.json").read_text())
            bm25 = bm25s.BM25.load(str(self.folder / "bm25")) if chunk_ids else None
        except (OSError, ValueError, KeyError):
            return False
        self._install(version, bm25, chunk_ids["chunk_ids"], chunk_ids["doc_ids"])
        return True

    def _build(self, version: int) -> None:
        rows = self.catalog.lexical_rows(self.collection)
        bm25 = None
        if rows:
            bm25 = bm25s.BM25()
            bm25.index([row.tokens for row in rows], show_progress=False)
        chunk_ids = [row.chunk_id for row in rows]
        doc_ids = [row.doc_id for row in rows]
        self._save(version, bm25, chunk_ids, doc_ids)
        self._install(version, bm25, chunk_ids, doc_ids)

    def _save(self, version: int, bm25: bm25s.BM25 | None, chunk_ids: list[str],
              doc_ids: list[str]) -> None:
        # Written to a temporary folder and swapped in, so readers never see half an index.
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(self.folder.parent)
        staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{os.getpid()}-",
                                        dir=self.folder.parent))
        try:
            if bm25 is not None:
                bm25.save(str(staging / "bm25"), show_progress=False)
            (staging / "chunks.json").write_text(
                json.dumps({"chunk_ids": chunk_ids, "doc_ids": doc_ids})
            )
            (staging / "version.json").write_text(json.dumps(
                {"version": version, "analyser": self.catalog.analyser_version}))
            old = self.folder.with_name(self.folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if self.folder.exists():
                self.folder.rename(old)
            staging.rename(self.folder)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            log.warning("could not persist the lexical index of %s: %s", self.collection, exc)
            shutil.rmtree(staging, ignore_errors=True)

    def _install(self, version: int, bm25: bm25s.BM25 | None, chunk_ids: list[str],
                 doc_ids: list[str]) -> None:
        self._bm25 = bm25
        self._chunk_ids = chunk_ids
        self._doc_ids = np.array(doc_ids, dtype=object)
        self._version = version
