"""The lexical (BM25) index of a collection, kept from the catalog and persisted beside it.

The index is a pure function of the catalog's chunks, so it is never the source of truth: each
segment is stamped with the catalog versions and the analyser version of the tokens it was
built from. A process catches up by reading only the documents the catalog changed since its
version, and rebuilds in full when its segments do not fit (another analyser, a catalog older
than the index, a change log that does not reach back far enough).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index import lexical_segment as segments
from index.catalog import Catalog
from index.lexical_segment import State, idf_of

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
    layout: int = -1
    """Which arrangement of rows it indexes: a merge keeps the version but moves the rows."""


def _best(scores: np.ndarray, k: int, chunk_id: Callable[[int], str]) -> np.ndarray:
    """The positions of the `k` best positive scores, best first; ties by chunk id, so the
    order does not depend on where a chunk sits in the segments, and a filter that keeps a
    chunk never changes its place among those it kept."""
    candidates = np.flatnonzero(scores > 0)
    if len(candidates) > k:
        cut = len(candidates) - k
        kth = np.partition(scores[candidates], cut)[cut]
        candidates = candidates[scores[candidates] >= kth]
    ranked = sorted(candidates.tolist(), key=lambda i: (-scores[i], chunk_id(i)))
    return np.array(ranked[:k], dtype=np.int64)


_STAGING = ".lexical-"


def _remove_stale_staging(parent: Path) -> None:
    """Remove staging folders (named after their process) of processes that died mid-save."""
    for path in [*parent.glob(f"{_STAGING}*"), *parent.glob(".tmp-*")]:
        owner = path.name.lstrip(".").split("-", 2)[1]
        if owner.isdigit() and _alive(int(owner)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LexicalIndex:
    """BM25 over one collection's chunks, kept in step with the catalog by version.

    Log-structured: a base segment of every chunk at some version, then one delta segment per
    catch-up holding the chunks of the documents written since (and superseding their earlier
    chunks). A write therefore costs the size of the write; when deltas and superseded chunks
    pass a share of the base, the next catch-up rebuilds one base from the catalog.
    """

    MERGE_SHARE = 0.25
    """Deltas plus superseded chunks, as a share of the base, that trigger a rebuild."""
    MERGE_MIN_ROWS = 2000
    """Below this many such rows there is no rebuild: a small collection rebuilds in no time
    anyway, and many tiny deltas cost nothing."""

    MAX_DELTAS = 32
    """More deltas than this are merged into one (each adds a lookup per query token)."""

    def __init__(self, catalog: Catalog, collection: str, folder: Path) -> None:
        self.catalog = catalog
        self.collection = collection
        self.folder = folder
        self._lock = threading.Lock()
        self._state: State | None = None
        self._born: str | None = None
        self._merging: threading.Thread | None = None

    @property
    def _version(self) -> int:
        return -2 if self._state is None else self._state.version

    def search(self, tokens: list[str], k: int, *,
               allowed_docs: set[str] | frozenset[str] | None = None,
               mask: RowMask | None = None) -> list[LexicalHit]:
        """The best `k` chunks for the query tokens, optionally only from `allowed_docs`;
        their `mask` (`rows_of`), if it is of the current version, saves finding their rows."""
        self.refresh()
        state = self._state
        if state is None or state.count == 0 or not tokens or k <= 0:
            return []
        scores = state.scores(tokens)
        if scores is None:
            return []
        rows: np.ndarray | None = None
        if mask is not None and (mask.version, mask.layout) == (state.version, state.layout):
            rows = mask.rows
        elif allowed_docs is not None:
            rows = state.rows(allowed_docs)
        if rows is not None:
            # Only the allowed chunks compete, so none of them loses its place to another.
            scores = scores[rows]
        top = _best(scores, k, lambda i: state.chunk_ids[i if rows is None else rows[i]])
        positions = top if rows is None else rows[top]
        return [LexicalHit(state.chunk_ids[position], float(scores[i]))
                for i, position in zip(top, positions, strict=True)]

    def chunk_ids_of(self, mask: RowMask) -> list[str] | None:
        """The chunk ids at a mask's rows; None if the index has changed since it was made."""
        state = self._state
        if state is None or (mask.version, mask.layout) != (state.version, state.layout):
            return None
        return [state.chunk_ids[row] for row in mask.rows]

    def rows_of(self, doc_ids: set[str] | frozenset[str]) -> RowMask:
        """The rows of these documents' chunks in the current version, for `search`."""
        self.refresh()
        state = self._state
        if state is None:
            return RowMask(self._version, np.empty(0, dtype=np.int64), 0)
        return RowMask(state.version, state.rows(doc_ids), state.count, state.layout)

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """BM25 inverse document frequency of each token over the collection's chunks.

        A token no chunk holds gets the highest weight: the collection cannot answer with it.
        """
        self.refresh()
        state = self._state
        count = 0 if state is None else state.count
        weights = {}
        for token in tokens:
            frequency = 0 if state is None else state.frequency(token)
            weights[token] = idf_of(count, frequency)
        return weights

    def refresh(self) -> None:
        """Catch up with the catalog if it has changed since the index was last brought up to
        date: from the saved segments, then from the documents the catalog changed since."""
        record = self.catalog.collection(self.collection)
        version = -1 if record is None else record.version
        if version == self._version:
            return
        with self._lock:
            if version == self._version:
                return
            state = self._state
            # Versions may repeat in a collection dropped and made again (SQLite's restart at
            # 0): what the index holds of the earlier one must not be caught up from.
            born = None if record is None else record.created_at
            if state is None or version < state.version or born != self._born:
                state = self._load(version)
            self._born = born
            if state is not None and state.version != version:
                state = self._catch_up(state, version)
            if state is None:
                state = self._build(version)
            elif len(state.parts) > self.MAX_DELTAS:
                state = self._compact(state) or self._build(version)
            self._state = state
            if self._needs_merge(state) and self._merging is None:
                # Readers keep the current segments while a new base is built.
                self._merging = threading.Thread(target=self._merge, args=(version, born),
                                                 name=f"lexical-merge-{self.collection}",
                                                 daemon=True)
                self._merging.start()

    def wait_for_merge(self) -> None:
        """Return once no rebuild runs in the background (for tests and shutdown)."""
        merging = self._merging
        if merging is not None:
            merging.join()

    def _merge(self, version: int, born: str | None) -> None:
        """Build a new base at `version` and install it, caught up with what was written
        meanwhile, unless the collection was made again in the meantime."""
        try:
            merged: State | None = self._build(version)
            with self._lock:
                current = self._state
                if current is None or born != self._born or current.version < version:
                    return
                if merged is not None and current.version != version:
                    merged = self._catch_up(merged, current.version)
                if merged is not None:
                    self._state = merged
                    self._keep_only(merged)
        except Exception:  # a failed merge leaves the deltas serving; the next write retries
            log.exception("merging the lexical index of %s failed", self.collection)
        finally:
            self._merging = None

    def _load(self, version: int) -> State | None:
        """The saved base and the deltas chained to it, up to `version`; None if none fits."""
        try:
            names = sorted(path.name for path in self.folder.glob("*.npz"))
        except OSError:
            return None
        stamps = [(name, *_stamp(name)) for name in names]
        bases = [s for s in stamps if s[1] == segments.BASE and s[3] <= version]
        for name, *_ in sorted(bases, key=lambda s: -s[3]):
            base = segments.load(self.folder / name)
            if base is None or base.analyser != self.catalog.analyser_version:
                continue
            state = State.of(base)
            while True:
                following = [s for s in stamps if s[1] == segments.DELTA
                             and s[2] == state.version and s[3] <= version]
                delta = (segments.load(self.folder / max(following, key=lambda s: s[3])[0])
                         if following else None)
                if delta is None or delta.analyser != base.analyser:
                    return state
                state = state.apply(delta)
        return None

    def _catch_up(self, state: State, version: int) -> State | None:
        """`state` with the documents the catalog changed since it; None if the catalog's log
        of changes does not reach back that far."""
        changed = self.catalog.changed_documents(self.collection, state.version, version)
        if changed is None:
            return None
        rows = self.catalog.iter_lexical_rows(self.collection, changed)
        delta = segments.build(segments.DELTA, state.version, version,
                               self.catalog.analyser_version, rows, frozenset(changed))
        self._save(delta)
        return state.apply(delta)

    def _compact(self, state: State) -> State | None:
        """`state` with its deltas merged into one, read again from the catalog: the cost of
        the deltas, not of the base; None if the catalog's log no longer reaches the base."""
        base = state.parts[0]
        changed = self.catalog.changed_documents(self.collection, base.to_version,
                                                 state.version)
        if changed is None:
            return None
        delta = segments.build(segments.DELTA, base.to_version, state.version,
                               self.catalog.analyser_version,
                               self.catalog.iter_lexical_rows(self.collection, changed),
                               frozenset(changed))
        state = State.of(base).apply(delta)
        if self._save(delta):
            self._keep_only(state)
        return state

    def _keep_only(self, state: State) -> None:
        """Remove the saved segments `state` does not chain (replaced by a merge), but not a
        newer base a merge in the background may just have saved."""
        kept = {part.file_name for part in state.parts}
        for path in self.folder.glob("*.npz"):
            kind, _, to_version = _stamp(path.name)
            newer = kind == segments.BASE and to_version > state.parts[0].to_version
            if path.name not in kept and not newer and to_version <= state.version:
                path.unlink(missing_ok=True)

    def _needs_merge(self, state: State) -> bool:
        extra = state.count_total - len(state.parts[0]) + state.dead
        return extra > max(self.MERGE_MIN_ROWS, self.MERGE_SHARE * len(state.parts[0]))

    def _build(self, version: int) -> State:
        rows = self.catalog.iter_lexical_rows(self.collection)
        base = segments.build(segments.BASE, 0, version, self.catalog.analyser_version, rows)
        if self._save(base):
            self._remove_older_than(base)
            for legacy in ("bm25", "chunks.json", "version.json"):  # before segments
                path = self.folder / legacy
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        return State.of(base)

    def _save(self, segment: segments.Segment) -> bool:
        try:
            _remove_stale_staging(self.folder.parent)
            _remove_stale_staging(self.folder)
            segment.save(self.folder)
            return True
        except OSError as exc:
            log.warning("could not persist the lexical index of %s: %s", self.collection, exc)
            return False

    def _remove_older_than(self, base: segments.Segment) -> None:
        """Segments that a new base makes useless (everything but it and later deltas)."""
        for path in self.folder.glob("*.npz"):
            kind, _, to_version = _stamp(path.name)
            if path.name != base.file_name and (kind == segments.BASE
                                                or to_version <= base.to_version):
                path.unlink(missing_ok=True)


def _stamp(name: str) -> tuple[str, int, int]:
    """Kind, first and last version of a segment file's name; ("", -1, -1) if not one."""
    parts = name.removesuffix(".npz").split("-")
    try:
        return parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return "", -1, -1
