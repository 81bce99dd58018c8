"""Versioned data: a data folder written before the catalog had a version opens and migrates,
one from a newer citeqa is refused untouched, and a new analyser re-tokenises stored chunks.

The old folder is written here as citeqa wrote it at commit 95b33d8: the catalog from that
commit's schema (tests/data/catalog-v1.sql) and rows, the vectors in two Chroma collections,
with no user_version. Real SQLite, real Chroma, the real model.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from core import text
from core.errors import ConfigurationError
from core.settings import Settings
from core.text import search_tokens, sentence_spans
from index import lexical_segment, schema
from index.catalog_sqlite import SqliteCatalog
from index.store import Store

V1_SCHEMA = Path(__file__).parent / "data" / "catalog-v1.sql"
COLLECTION = "articles"
DOC_ID = "skerry-point.md"
TITLE = "Keeper Returns to Skerry Point"
TEXT = (
    "The Skerry Point lighthouse was relit on Saturday after a two-year restoration. "
    "Its new keeper, Halvard Brekke, trained as a marine engineer in Bergen. "
    "The lamp can be seen from 34 kilometres away on a clear night."
)


def write_old_folder(data_dir: Path, embedder: Any) -> str:
    """A data folder as citeqa wrote it before versioning, holding one document; its chunk id."""
    data_dir.mkdir(parents=True, exist_ok=True)
    spans = sentence_spans(TEXT)
    sentence_vectors = np.asarray(embedder.embed_documents([TEXT[s:e] for s, e in spans]))
    chunk_vector = sentence_vectors.mean(axis=0)
    chunk_vector /= np.linalg.norm(chunk_vector)
    content_hash = hashlib.sha256(TEXT.encode()).hexdigest()
    chunk_id = f"{DOC_ID}::{content_hash[:12]}::0"
    catalog_id = "0123456789abcdef0123456789abcdef"

    db = sqlite3.connect(data_dir / "catalog.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(V1_SCHEMA.read_text())
    db.execute("INSERT INTO meta (key, value) VALUES ('catalog_id', ?)", (catalog_id,))
    db.execute("INSERT INTO collections (name, model, dimension, version, created_at) "
               "VALUES (?, ?, ?, 1, '2026-01-05T10:00:00+00:00')",
               (COLLECTION, embedder.name, sentence_vectors.shape[1]))
    db.execute("INSERT INTO documents (collection, doc_id, title, url, date, date_num, source, "
               "metadata, text, content_hash, chunk_count, ingested_at) VALUES "
               "(?, ?, ?, NULL, '2026-01-03', 20260103, 'Coast Gazette', '{}', ?, ?, 1, "
               "'2026-01-05T10:00:00+00:00')",
               (COLLECTION, DOC_ID, TITLE, TEXT, content_hash))
    db.execute('INSERT INTO chunks (collection, chunk_id, doc_id, idx, start, "end", tokens) '
               "VALUES (?, ?, ?, 0, 0, ?, ?)",
               (COLLECTION, chunk_id, DOC_ID, len(TEXT),
                " ".join(search_tokens(f"{TITLE} {TEXT}"))))
    db.executemany('INSERT INTO sentences (collection, doc_id, start, "end", vector) '
                   "VALUES (?, ?, ?, ?, ?)",
                   [(COLLECTION, DOC_ID, s, e, v.astype(np.float16).tobytes())
                    for (s, e), v in zip(spans, sentence_vectors, strict=True)])
    db.close()

    client = chromadb.PersistentClient(
        path=str(data_dir / "chroma"),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))
    owner = {"citeqa_model": embedder.name, "citeqa_catalog": catalog_id}
    chunks, sentences = (
        client.get_or_create_collection(name, embedding_function=None, metadata=owner,
                                        configuration={"hnsw": {"space": "cosine"}})
        for name in (COLLECTION, COLLECTION + ".sentences"))
    chunks.add(ids=[chunk_id], embeddings=[chunk_vector.astype(np.float32)],
               metadatas=[{"doc_id": DOC_ID, "index": 0, "start": 0, "end": len(TEXT),
                           "title": TITLE, "source": "Coast Gazette", "date": "2026-01-03",
                           "date_num": 20260103}])
    sentences.add(ids=[f"{chunk_id}::s{i}" for i in range(len(spans))],
                  embeddings=sentence_vectors.astype(np.float32),
                  metadatas=[{"doc_id": DOC_ID, "source": "Coast Gazette",
                              "date_num": 20260103, "chunk_id": chunk_id}] * len(spans))
    return chunk_id


def state(data_dir: Path) -> tuple[int, list[str]]:
    """The catalog's user_version and full SQL dump, read as another process would."""
    db = sqlite3.connect(f"file:{data_dir / 'catalog.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0], list(db.iterdump())
    finally:
        db.close()


def stored_tokens(data_dir: Path) -> str:
    """The tokens the catalog holds for the one chunk of the old folder."""
    db = sqlite3.connect(data_dir / "catalog.sqlite3")
    try:
        return str(db.execute("SELECT tokens FROM chunks").fetchone()[0])
    finally:
        db.close()


def test_a_folder_from_before_versioning_opens_and_migrates_once(
        settings: Settings, embedder: Any, caplog: pytest.LogCaptureFixture) -> None:
    chunk_id = write_old_folder(settings.data_dir, embedder)
    old_tokens = stored_tokens(settings.data_dir)
    assert state(settings.data_dir)[0] == 0

    with caplog.at_level(logging.INFO, logger="index.schema"):
        collection = Store.from_settings(settings).collection(COLLECTION)
    assert f"from version 0 to {schema.latest()}" in caplog.text
    assert [stored.document.id for stored in collection.documents()] == [DOC_ID]
    assert collection.lexical_search(search_tokens("Who is Halvard Brekke?"), 5)[0].chunk_id \
        == chunk_id
    question = embedder.embed_query("Who keeps the Skerry Point lighthouse?")
    assert collection.dense_search(question, 5)[0].chunk_id == chunk_id
    # Today's analyser is version 1: the stored tokens are kept as they were.
    assert stored_tokens(settings.data_dir) == old_tokens
    migrated = state(settings.data_dir)
    assert migrated[0] == schema.latest()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="index.schema"):
        again = Store.from_settings(settings).collection(COLLECTION)
    assert caplog.text == ""
    assert state(settings.data_dir) == migrated
    assert [stored.document.id for stored in again.documents()] == [DOC_ID]


def test_a_folder_from_a_newer_citeqa_is_refused_and_left_unchanged(
        settings: Settings, embedder: Any) -> None:
    write_old_folder(settings.data_dir, embedder)
    db = sqlite3.connect(settings.data_dir / "catalog.sqlite3")
    db.execute(f"PRAGMA user_version = {schema.latest() + 1}")
    db.close()
    before = state(settings.data_dir)
    catalog_bytes = (settings.data_dir / "catalog.sqlite3").read_bytes()

    with pytest.raises(ConfigurationError) as refused:
        Store.from_settings(settings)
    assert refused.value.code == "catalog_too_new"
    assert f"schema version {schema.latest() + 1}" in refused.value.detail
    assert "Upgrade citeqa" in refused.value.detail
    assert state(settings.data_dir) == before
    assert (settings.data_dir / "catalog.sqlite3").read_bytes() == catalog_bytes


def _segments(folder: Path) -> list[lexical_segment.Segment]:
    """The lexical index's saved segments."""
    found = [lexical_segment.load(path) for path in sorted(folder.glob("*.npz"))]
    return [segment for segment in found if segment is not None]


def _unstemmed(text_: str, *, question: bool = False) -> list[str]:
    """A different analyser: the same words, not stemmed."""
    drop = text.STOP_WORDS | text.QUESTION_WORDS if question else text.STOP_WORDS
    return [word for word in text.words(text_) if word not in drop]


def test_a_new_analyser_re_tokenises_the_stored_chunks_and_rebuilds_bm25(
        settings: Settings, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    chunk_id = write_old_folder(settings.data_dir, embedder)
    collection = Store.from_settings(settings).collection(COLLECTION)
    assert collection.lexical_search(search_tokens("restoration"), 5)[0].chunk_id == chunk_id
    folder = settings.data_dir / "lexical" / COLLECTION
    assert [segment.analyser for segment in _segments(folder)] == [1]

    monkeypatch.setattr(text, "ANALYSER_VERSION", 2)
    monkeypatch.setattr(text, "search_tokens", _unstemmed)
    collection = Store.from_settings(settings).collection(COLLECTION)
    assert stored_tokens(settings.data_dir) == " ".join(_unstemmed(f"{TITLE} {TEXT}"))
    # The BM25 files were rebuilt from the new tokens: the unstemmed word is found, the stem
    # the old index held is not.
    assert [hit.chunk_id for hit in collection.lexical_search(["restoration"], 5)] == [chunk_id]
    assert collection.lexical_search(["restor"], 5) == []
    # Only the rebuilt base is left: the segments of the old tokens are gone.
    assert [segment.analyser for segment in _segments(folder)] == [2]
    db = sqlite3.connect(settings.data_dir / "catalog.sqlite3")
    assert db.execute("SELECT value FROM meta WHERE key = 'analyser_version'").fetchone() == ("2",)
    db.close()


def test_a_failed_migration_leaves_the_folder_as_it_was_and_a_later_one_applies(
        settings: Settings, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    write_old_folder(settings.data_dir, embedder)
    before = state(settings.data_dir)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("killed mid-migration")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, half_done])
    with pytest.raises(RuntimeError, match="killed mid-migration"):
        Store.from_settings(settings)
    assert state(settings.data_dir) == before

    by_source = "CREATE INDEX documents_by_source ON documents (collection, source);"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS[:1], by_source])
    held: list[bool] = []

    @contextmanager
    def write_lock() -> Iterator[None]:
        held.append(True)
        yield

    catalog = SqliteCatalog(settings.data_dir / "catalog.sqlite3", write_lock=write_lock)
    version, dump = state(settings.data_dir)
    assert version == 2 and held == [True]
    assert any("documents_by_source" in line for line in dump)
    assert [stored.document.id for stored in catalog.documents(COLLECTION)] == [DOC_ID]
    SqliteCatalog(settings.data_dir / "catalog.sqlite3", write_lock=write_lock)
    assert held == [True]  # current already: no lock taken, nothing written


def test_a_new_catalog_is_created_at_the_latest_version(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="index.schema"):
        catalog = SqliteCatalog(tmp_path / "catalog.sqlite3")
    assert "migrated" not in caplog.text
    assert state(tmp_path)[0] == schema.latest()
    assert catalog.analyser_version == text.ANALYSER_VERSION
    assert catalog.collections() == []


def test_an_unversioned_file_with_other_tables_is_not_taken_for_a_catalog(tmp_path: Path
                                                                           ) -> None:
    db = sqlite3.connect(tmp_path / "catalog.sqlite3")
    db.execute("CREATE TABLE chunks (id INTEGER, body TEXT)")
    db.close()
    with pytest.raises(ConfigurationError) as refused:
        SqliteCatalog(tmp_path / "catalog.sqlite3")
    assert refused.value.code == "catalog_unreadable"
    assert "table chunks has columns ['id', 'body']" in refused.value.detail
    assert state(tmp_path)[0] == 0


def test_a_process_does_not_write_after_another_version_re_tokenised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    older = SqliteCatalog(tmp_path / "catalog.sqlite3")
    monkeypatch.setattr(text, "ANALYSER_VERSION", text.ANALYSER_VERSION + 1)
    SqliteCatalog(tmp_path / "catalog.sqlite3")
    with pytest.raises(ConfigurationError) as refused:
        older.create_collection("articles", model="m", dimension=3)
    assert refused.value.code == "catalog_changed"
    assert older.collections() == []
