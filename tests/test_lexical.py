"""The incremental lexical index: after any writes it ranks exactly as a rebuild from scratch
would, catches up from disk and from the catalog, and scores as bm25s does."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest

from core.documents import Chunk, Document, PreparedDocument
from core.settings import Settings
from index.catalog import Catalog
from index.lexical import LexicalIndex
from index.store import open_catalog

COLLECTION = "harbour"
# A small made-up vocabulary, so random chunks share words and scores tie now and then.
WORDS = ["tide", "pier", "ferry", "gull", "rope", "anchor", "lantern", "fog", "harbour",
         "crane", "dock", "salt", "net", "keel", "buoy", "mast", "sail", "wharf", "storm", "calm"]


def _catalog(settings: Settings) -> Catalog:
    catalog = open_catalog(settings.data_dir, settings.catalog_url)
    catalog.create_collection(COLLECTION, model="none", dimension=2)
    return catalog


def _prepared(doc_id: str, chunk_texts: list[str]) -> tuple[PreparedDocument, list[str]]:
    text = " ".join(chunk_texts)
    chunks, start = [], 0
    for index, chunk_text in enumerate(chunk_texts):
        chunks.append(Chunk(doc_id, index, start, start + len(chunk_text), chunk_text))
        start += len(chunk_text) + 1
    document = Document.stored(id=doc_id, text=text, title=doc_id, url=None, date=None,
                               source=None, metadata={})
    prepared = PreparedDocument(document, chunks, np.zeros((len(chunks), 2)),
                                [chunk_text.split() for chunk_text in chunk_texts], [],
                                np.zeros((0, 2)))
    return prepared, [chunk.chunk_id(document.content_hash) for chunk in chunks]


def _random_chunks(rng: random.Random) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 12)))
            for _ in range(rng.randint(1, 4))]


def _ranking(index: LexicalIndex, query: list[str]) -> list[tuple[str, float]]:
    return [(hit.chunk_id, hit.score) for hit in index.search(query, 10_000)]


def _same(incremental: LexicalIndex, rebuilt: LexicalIndex, query: list[str]) -> None:
    found, expected = _ranking(incremental, query), _ranking(rebuilt, query)
    assert [chunk for chunk, _ in found] == [chunk for chunk, _ in expected], query
    assert [score for _, score in found] == pytest.approx([s for _, s in expected], rel=1e-9)


@pytest.mark.parametrize(("seed", "merge_rows", "max_deltas"),
                         [(1, 12, 3), (2, 40, 2), (3, 10_000, 4)])
def test_after_random_writes_the_index_ranks_as_a_rebuild_would(
        settings: Settings, tmp_path: Path, seed: int, merge_rows: int, max_deltas: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Small thresholds, so the sequence crosses rebuilds and merged deltas as well as deltas.
    monkeypatch.setattr(LexicalIndex, "MERGE_MIN_ROWS", merge_rows)
    monkeypatch.setattr(LexicalIndex, "MAX_DELTAS", max_deltas)
    rng = random.Random(seed)
    catalog = _catalog(settings)
    live = LexicalIndex(catalog, COLLECTION, tmp_path / "live")
    alive: set[str] = set()
    for step in range(40):
        action = rng.random()
        if alive and action < 0.25:
            gone = rng.sample(sorted(alive), rng.randint(1, min(2, len(alive))))
            catalog.delete_documents(COLLECTION, gone)
            alive -= set(gone)
        else:
            names = {f"doc-{rng.randint(0, 14)}" for _ in range(rng.randint(1, 3))}
            catalog.write_documents(COLLECTION, [_prepared(name, _random_chunks(rng))
                                                 for name in sorted(names)])
            alive |= names
        if step % 3 == 0:  # not every version is seen: catch-ups span several writes
            live.refresh()
        if step % 4 == 0:  # and some rebuilds finish before the next write, some after
            live.wait_for_merge()
        rebuilt = LexicalIndex(catalog, COLLECTION, tmp_path / f"rebuilt-{step}")
        query = rng.sample(WORDS, rng.randint(1, 3))
        _same(live, rebuilt, query)
        assert {hit.chunk_id for hit in live.search(query, 10_000)} <= catalog.chunk_ids(
            COLLECTION)
        kept = frozenset(rng.sample(sorted(alive), min(3, len(alive))))
        assert [h.chunk_id for h in live.search(query, 5, allowed_docs=kept)] == [
            h.chunk_id for h in rebuilt.search(query, 5, allowed_docs=kept)]
        assert live.idf(query) == pytest.approx(rebuilt.idf(query))
    # Merged deltas leave no files behind: one base and fewer deltas than the limit.
    live.refresh()
    live.wait_for_merge()
    files = [path.name.split("-")[0] for path in (tmp_path / "live").iterdir()]
    assert files.count("base") == 1 and files.count("delta") < max_deltas
    # Another process, starting from the segments this one saved, lands on the same index.
    reopened = LexicalIndex(catalog, COLLECTION, tmp_path / "live")
    _same(reopened, LexicalIndex(catalog, COLLECTION, tmp_path / "last"), WORDS[:6])


def test_a_write_adds_a_delta_without_rebuilding_and_a_new_process_chains_it(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = _catalog(settings)
    catalog.write_documents(COLLECTION, [_prepared(f"doc-{i}", ["tide pier", "fog rope"])
                                         for i in range(5)])
    folder = tmp_path / "lexical"
    index = LexicalIndex(catalog, COLLECTION, folder)
    index.refresh()
    base = sorted(path.name for path in folder.iterdir())
    assert len(base) == 1 and base[0].startswith("base-")

    catalog.write_documents(COLLECTION, [_prepared("doc-1", ["lantern keel"])])
    catalog.delete_documents(COLLECTION, ["doc-2"])
    assert [hit.chunk_id.split("::")[0] for hit in index.search(["lantern"], 5)] == ["doc-1"]
    files = sorted(path.name for path in folder.iterdir())
    assert files[0] == base[0] and len(files) == 2 and files[1].startswith("delta-")
    assert not any(hit.chunk_id.startswith(("doc-1::", "doc-2::"))
                   for hit in index.search(["tide"], 10))

    # A second process (its own cache, same folder) loads base + delta without reading the
    # catalog's rows at all, and answers the same.
    read: list[object] = []
    monkeypatch.setattr(catalog, "iter_lexical_rows", lambda *args: read.append(args))
    other = LexicalIndex(catalog, COLLECTION, folder)
    assert _ranking(other, ["tide", "lantern"]) == _ranking(index, ["tide", "lantern"])
    assert read == []


def test_a_damaged_delta_file_is_caught_up_from_the_catalog(settings: Settings,
                                                             tmp_path: Path) -> None:
    catalog = _catalog(settings)
    catalog.write_documents(COLLECTION, [_prepared("doc-0", ["gull mast"])])
    folder = tmp_path / "lexical"
    LexicalIndex(catalog, COLLECTION, folder).refresh()
    catalog.write_documents(COLLECTION, [_prepared("doc-1", ["gull sail"])])
    LexicalIndex(catalog, COLLECTION, folder).refresh()
    delta = next(folder.glob("delta-*"))
    delta.write_bytes(delta.read_bytes()[:40])  # as if cut short on disk

    index = LexicalIndex(catalog, COLLECTION, folder)
    assert {hit.chunk_id.split("::")[0] for hit in index.search(["gull"], 5)} == {
        "doc-0", "doc-1"}


def test_scores_are_those_of_bm25s(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(7)
    catalog = _catalog(settings)
    catalog.write_documents(COLLECTION, [_prepared(f"doc-{i:02}", _random_chunks(rng))
                                         for i in range(30)])
    index = LexicalIndex(catalog, COLLECTION, tmp_path / "lexical")
    rows = catalog.lexical_rows(COLLECTION)
    reference = bm25s.BM25()
    reference.index([row.tokens for row in rows], show_progress=False)
    query = ["ferry", "storm", "net"]
    expected = reference.get_scores(query)
    found = {hit.chunk_id: hit.score for hit in index.search(query, 10_000)}
    for row, score in zip(rows, expected, strict=True):
        assert found.get(row.chunk_id, 0.0) == pytest.approx(float(score), rel=1e-5, abs=1e-6)


def test_a_filter_mask_made_before_a_merge_is_not_applied_to_the_merged_rows(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LexicalIndex, "MERGE_MIN_ROWS", 3)
    catalog = _catalog(settings)
    catalog.write_documents(COLLECTION, [_prepared("doc-a", ["anchor rope"])])
    index = LexicalIndex(catalog, COLLECTION, tmp_path / "lexical")
    index.refresh()
    # Deltas that put documents before doc-a's rows; the merged base orders them by id.
    catalog.write_documents(COLLECTION, [_prepared(f"doc-{n}", ["anchor keel", "anchor"])
                                         for n in range(4)])
    mask = index.rows_of(frozenset({"doc-a"}))  # catches up, and starts the merge
    index.wait_for_merge()
    assert index.rows_of(frozenset({"doc-a"})).version == mask.version  # same catalog version
    found = index.search(["anchor"], 5, allowed_docs={"doc-a"}, mask=mask)
    assert [hit.chunk_id.split("::")[0] for hit in found] == ["doc-a"]
    assert index.chunk_ids_of(mask) is None
