"""Ingestion: loaders, offset-exact chunks, idempotent writes, deletes that really delete."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.documents import Chunk, Document, Filters, PreparedDocument, SkippedSource
from core.errors import ConfigurationError, InvalidInput, NotFound
from core.settings import Settings
from core.text import search_tokens, sentence_spans
from index.chunking import Chunker
from index.ingest import chunk_vectors, ingest_documents, ingest_paths
from index.loaders import load_bytes, load_sources
from index.store import CollectionStore, Store
from index.vectors import SENTENCES_SUFFIX, chroma_client, persistent_client
from tests.conftest import SAMPLES

LIGHTHOUSE = (
    "# Keeper Returns to Skerry Point\n\n"
    "The Skerry Point lighthouse was relit on Saturday after a two-year restoration. "
    "Its new keeper, Halvard Brekke, trained as a marine engineer in Bergen. "
    "The lamp can be seen from 34 kilometres away on a clear night.\n"
)


def _ingest(store: Store, embedder, settings: Settings, docs: list[Document], **kw):
    return ingest_documents(docs, store=store, collection="articles", embedder=embedder,
                            settings=settings, **kw)


def _chroma(settings: Settings) -> Any:
    """Chroma as the store reaches it, to damage its vectors behind the store's back."""
    if settings.chroma_url:
        return chroma_client(settings)
    return persistent_client(settings.data_dir / "chroma")


def test_loaders_read_every_supported_format(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain title\n\nSome plain text here.", encoding="utf-8")
    (tmp_path / "b.md").write_text("---\ndate: 2026-01-02\nsource: Wire\n---\n# Heading\n\nBody.",
                                   encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page title</title><script>var x = 'secret';</script></head>"
        "<body><nav>Home | About</nav><article><h1>Big</h1><p>Main text of the page.</p>"
        "</article><footer>Copyright</footer></body></html>", encoding="utf-8")
    lines = [{"id": "j1", "title": "J one", "text": "First.", "url": "http://x/1",
              "lang": "en"}, {"id": "j2", "text": "Second."}]
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(line) for line in lines))
    loaded = {d.id: d for d in load_sources([tmp_path], max_bytes=10**6)
              if isinstance(d, Document)}
    assert set(loaded) == {"a.txt", "b.md", "c.html", "j1", "j2"}
    assert loaded["a.txt"].title == "Plain title"
    assert (loaded["b.md"].title, loaded["b.md"].date, loaded["b.md"].source) == (
        "Heading", "2026-01-02", "Wire")
    assert not loaded["b.md"].text.startswith("---")
    html = loaded["c.html"]
    assert html.title == "Page title"
    assert "Main text of the page." in html.text
    assert "secret" not in html.text and "Home | About" not in html.text
    assert "Copyright" not in html.text
    assert loaded["j1"].url == "http://x/1" and loaded["j1"].metadata == {"lang": "en"}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bin.txt", b"\x00\x01\x02binary", "binary"),
        ("latin.txt", "café au lait".encode("latin-1"), "UTF-8"),
        ("empty.md", b"   \n  ", "empty"),
        ("broken.html", b"<html><body><script>x()</script></body></html>", "HTML"),
        ("prog.exe", b"MZ....", "unsupported"),
        ("bad.jsonl.gz", b"not gzip at all", "gzip"),
    ],
)
def test_unreadable_files_are_skipped_with_a_reason(name: str, data: bytes, reason: str) -> None:
    [skipped] = list(load_bytes(name, data, doc_id=name))
    assert isinstance(skipped, SkippedSource)
    assert skipped.name == name
    assert reason.lower() in skipped.reason.lower()


def test_bad_jsonl_lines_are_skipped_and_the_rest_loaded() -> None:
    data = b'{"id": "ok", "text": "Fine."}\n{broken\n{"id": "nt"}\n["list"]\n'
    loaded = list(load_bytes("x.jsonl", data, doc_id="x.jsonl"))
    assert [d.id for d in loaded if isinstance(d, Document)] == ["ok"]
    reasons = [s.name for s in loaded if isinstance(s, SkippedSource)]
    assert reasons == ["x.jsonl line 2", "x.jsonl line 3", "x.jsonl line 4"]


def test_every_chunk_is_an_exact_span_of_its_document() -> None:
    chunker = Chunker(chunk_size=300, chunk_overlap=60)
    documents = [d for d in load_sources([SAMPLES], max_bytes=10**6) if isinstance(d, Document)]
    odd = Document(id="odd", text="No punctuation at all " * 80 + "\n\n\n  trailing  \n")
    for document in [*documents, odd]:
        chunks = chunker.split(document)
        assert chunks
        for chunk in chunks:
            assert document.text[chunk.start:chunk.end] == chunk.text
            assert len(chunk.text) <= 300
        # Chunks cover the document's text in order.
        assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_sentences_are_exact_spans_that_respect_abbreviations() -> None:
    text = "Dr. Ana Silva met Mr. Jones at 3 p.m. on Friday. They agreed!\nNew line here"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Dr. Ana Silva met Mr. Jones at 3 p.m. on Friday.", "They agreed!", "New line here"]


def test_search_tokens_stem_and_drop_stop_words() -> None:
    assert search_tokens("Who co-leads the labs?") == ["co-lead", "co", "lead", "lab"]


def test_chunker_rejects_overlap_not_smaller_than_size() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(chunk_size=100, chunk_overlap=100)


def test_reingesting_the_same_files_adds_nothing(store: Store, embedder, settings: Settings
                                                 ) -> None:
    first = ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                         settings=settings)
    assert len(first.added) == 10 and first.chunks > 10
    collection = store.collection("articles")
    chunks_before = collection.count_chunks()
    vectors_before = collection.count_vectors()
    second = ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                          settings=settings)
    assert (second.added, second.updated, second.chunks) == ([], [], 0)
    assert len(second.unchanged) == 10
    assert collection.count_chunks() == chunks_before
    assert collection.count_vectors() == vectors_before == chunks_before
    assert "added 0" in second.summary() and "unchanged 10" in second.summary()


def test_changed_document_replaces_all_its_chunks(store: Store, embedder, settings: Settings
                                                  ) -> None:
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE * 6, title="LH")])
    collection = store.collection("articles")
    old_chunks = collection.count_chunks()
    assert old_chunks > 1
    changed = LIGHTHOUSE.replace("Halvard Brekke", "Ingrid Solheim")
    report = _ingest(store, embedder, settings, [Document(id="lh", text=changed, title="LH")])
    assert report.updated == ["lh"]
    assert collection.count_chunks() == collection.count_vectors() == 1
    # The old version's sentence vectors went with its chunks.
    assert len(_stored_sentences(collection)) == len(sentence_spans(changed))
    assert collection.document("lh").document.text == changed
    hits = collection.lexical_search(search_tokens("Halvard Brekke"), 10)
    assert hits == []
    hits = collection.lexical_search(search_tokens("Ingrid Solheim"), 10)
    assert len(hits) == 1


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, real) -> None:
        self.real, self.name, self.dimension = real, real.name, real.dimension
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return self.real.embed_documents(texts)

    def embed_query(self, text):
        return self.real.embed_query(text)


def test_an_edit_re_embeds_only_the_sentences_it_changed(store: Store, embedder,
                                                          settings: Settings) -> None:
    counting = CountingEmbedder(embedder)
    _ingest(store, counting, settings, [Document(id="lh", text=LIGHTHOUSE, title="LH")])
    assert len(counting.embedded) == len(sentence_spans(LIGHTHOUSE)) + 1  # and the title
    counting.embedded.clear()
    changed = LIGHTHOUSE.replace("34 kilometres", "41 kilometres")
    report = _ingest(store, counting, settings, [Document(id="lh", text=changed, title="LH")])
    assert report.updated == ["lh"]
    # In any order: texts go to the model shortest first.
    assert sorted(counting.embedded) == [
        "LH", "The lamp can be seen from 41 kilometres away on a clear night."]
    # The kept vectors are the same as a fresh ingest of the edited text would give.
    fresh = embedder.embed_documents(["Its new keeper, Halvard Brekke, trained as a marine "
                                      "engineer in Bergen."])[0]
    kept = _stored_sentences(store.collection("articles"))
    assert max(float(np.dot(vector, fresh)) for vector in kept.values()) > 0.999


def _stored_sentences(collection: CollectionStore) -> dict[tuple[str, int], np.ndarray]:
    """(document id, sentence start) -> the stored vector, for every sentence of a collection."""
    records = collection.chunks(sorted(collection.chunk_ids()))
    return {(record.document.id, sentence.start): sentence.vector
            for record in records.values() for sentence in record.sentences}


def test_deleted_document_is_gone_from_dense_and_lexical_search(
        store: Store, embedder, settings: Settings) -> None:
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE, title="Skerry")])
    collection = store.collection("articles")
    query = "Who is the keeper of the Skerry Point lighthouse?"
    vector = embedder.embed_query(query)
    assert collection.dense_search(vector, 1)[0].chunk_id.startswith("lh::")
    assert collection.lexical_search(search_tokens(query), 1)[0].chunk_id.startswith("lh::")

    collection.delete(["lh"])

    everything = collection.count_chunks()
    assert not any(h.chunk_id.startswith("lh::") for h in collection.dense_search(vector, 100))
    assert not any(h.chunk_id.startswith("lh::")
                   for h in collection.lexical_search(search_tokens(query), everything))
    # A fresh process sees the same: the persisted lexical index was rebuilt, not stale.
    reopened = Store.from_settings(settings).collection("articles")
    assert not any(h.chunk_id.startswith("lh::")
                   for h in reopened.lexical_search(search_tokens(query), everything))
    with pytest.raises(NotFound):
        collection.document("lh")
    with pytest.raises(NotFound):
        collection.delete(["lh"])


def test_prune_removes_documents_missing_from_the_sources(
        tmp_path: Path, store: Store, embedder, settings: Settings) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "keep.txt").write_text("Keep me\n\nThis article stays.", encoding="utf-8")
    (folder / "drop.txt").write_text("Drop me\n\nThis article goes.", encoding="utf-8")
    ingest_paths([folder], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    (folder / "drop.txt").unlink()
    report = ingest_paths([folder], store=store, collection="articles", embedder=embedder,
                          settings=settings, prune=True)
    assert report.pruned == ["drop.txt"]
    assert [d.document.id for d in store.collection("articles").documents()] == ["keep.txt"]


def test_filters_limit_both_retrievers(store: Store, embedder, settings: Settings) -> None:
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    collection = store.collection("articles")
    only_tram = Filters(doc_ids=("brackenford-tram-line.md",))
    vector = embedder.embed_query("Who co-leads the lab?")
    dense = collection.dense_search(vector, 20, only_tram)
    lexical = collection.lexical_search(search_tokens("tram line stops lab"), 20, only_tram)
    assert dense and lexical
    assert all(h.chunk_id.startswith("brackenford-tram-line.md::") for h in dense + lexical)
    late = Filters(date_from="2026-10-01")
    docs = {h.chunk_id.split("::")[0] for h in collection.dense_search(vector, 50, late)}
    assert docs == {"rsv-vaccine-trial.md", "fernleaf-robotics-funding.md"}


def test_collection_names_and_models_are_checked(store: Store, embedder, settings: Settings
                                                 ) -> None:
    with pytest.raises(InvalidInput, match="invalid collection name"):
        store.collection("a/b")
    # That suffix named each collection's sentence vectors in older folders: still reserved.
    with pytest.raises(InvalidInput, match="sentences"):
        store.create_collection("news.sentences", model=embedder.name, dimension=384)
    with pytest.raises(NotFound, match="does not exist"):
        store.collection("missing")
    _ingest(store, embedder, settings, [Document(id="x", text="Some text.")])
    with pytest.raises(ConfigurationError, match="built with embedding model"):
        store.create_collection("articles", model="other-model", dimension=384)


def test_orphaned_vectors_of_an_interrupted_write_are_removed(
        store: Store, embedder, settings: Settings) -> None:
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE, title="LH")])
    # Simulate a run killed after writing vectors but before the catalog committed.
    _chroma(settings).get_collection("articles").upsert(
        ids=["ghost::0000::0"], embeddings=[[0.1] * 384], documents=["ghost"],
        metadatas=[{"doc_id": "ghost"}])
    reopened = Store.from_settings(settings).collection("articles")
    assert reopened.count_vectors() == reopened.count_chunks()
    hits = reopened.dense_search(embedder.embed_query("ghost"), 10)
    assert all(not h.chunk_id.startswith("ghost") for h in hits)


def test_a_failed_batch_write_stops_ingestion_and_keeps_earlier_batches_whole(
        store: Store, embedder, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches are written on another thread while the next is embedded; a failure there must
    # still stop the run, with every batch before it committed and nothing after it.
    writes = 0
    real_write = CollectionStore.write

    def failing_second_write(self: CollectionStore, items: list[PreparedDocument]) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise OSError("disk full")
        real_write(self, items)

    monkeypatch.setattr(CollectionStore, "write", failing_second_write)
    notes = [Document(id=f"note-{n}", title=f"Note {n}",
                      text=f"Harbour log entry {n}. The tide stood {n * 7} cm above the mark.")
             for n in range(8)]
    with pytest.raises(OSError, match="disk full"):
        _ingest(store, embedder, settings.model_copy(update={"ingest_batch_chunks": 2}), notes)

    assert writes == 2
    reopened = Store.from_settings(settings).collection("articles")
    assert sorted(d.document.id for d in reopened.documents()) == ["note-0", "note-1"]
    assert reopened.count_vectors() == reopened.count_chunks() == 2


def test_an_older_folders_sentence_vector_collection_is_deleted_and_nothing_is_lost(
        store: Store, embedder, settings: Settings) -> None:
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE, title="LH")])
    # Folders made before 2026-11-30 also kept every sentence vector in Chroma.
    legacy = _chroma(settings).create_collection(
        "articles" + SENTENCES_SUFFIX, embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}})
    legacy.add(ids=[f"lh::0000::0::s{n}" for n in range(50)], embeddings=np.full((50, 384), 0.1),
               metadatas=[{"doc_id": "lh"}] * 50)
    folders_before = _segment_folders(settings)

    reopened = Store.from_settings(settings).collection("articles")
    names = {c.name for c in _chroma(settings).list_collections()}
    assert "articles" + SENTENCES_SUFFIX not in names and "articles" in names
    if not settings.chroma_url:
        # Its index files went with it (embedded Chroma leaves them by itself).
        assert len(_segment_folders(settings)) == len(folders_before) - 1
    assert [d.document.id for d in reopened.documents()] == ["lh"]
    vector = embedder.embed_query("Who is the new keeper?")
    assert reopened.dense_search(vector, 1)[0].chunk_id.startswith("lh::")
    assert len(_stored_sentences(reopened)) == len(sentence_spans(LIGHTHOUSE))


def test_a_deleted_collection_leaves_no_index_files(store: Store, embedder,
                                                    settings: Settings) -> None:
    if settings.chroma_url:
        pytest.skip("a Chroma server keeps its own files")
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE * 3, title="LH")])
    assert _segment_folders(settings)
    store.delete_collection("articles")
    assert _segment_folders(settings) == set()
    # The folder is still usable: the collection can be made again.
    report = _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE, title="LH")])
    assert report.added == ["lh"]
    vector = embedder.embed_query("Who is the new keeper?")
    assert store.collection("articles").dense_search(vector, 1)[0].chunk_id.startswith("lh::")


def test_index_files_an_earlier_delete_left_are_removed_on_open(store: Store, embedder,
                                                                 settings: Settings) -> None:
    if settings.chroma_url:
        pytest.skip("a Chroma server keeps its own files")
    _ingest(store, embedder, settings, [Document(id="lh", text=LIGHTHOUSE, title="LH")])
    live = _segment_folders(settings)
    left = settings.data_dir / "chroma" / "0b5e7a64-1c52-4a8e-9f0e-5d1a2b3c4d5e"
    left.mkdir()
    (left / "data_level0.bin").write_bytes(b"\0" * 4096)
    notes = settings.data_dir / "chroma" / "my-notes"
    notes.mkdir()
    # Named like a segment but holding no index files: not Chroma's to have left, kept.
    unknown = settings.data_dir / "chroma" / "7f3c9a10-2b4d-4e6f-8a1b-9c0d1e2f3a4b"
    unknown.mkdir()

    reopened = Store.from_settings(settings).collection("articles")
    assert _segment_folders(settings) == live | {"my-notes", unknown.name}
    assert [d.document.id for d in reopened.documents()] == ["lh"]
    vector = embedder.embed_query("Who is the new keeper?")
    assert reopened.dense_search(vector, 1)[0].chunk_id.startswith("lh::")


def _segment_folders(settings: Settings) -> set[str]:
    """The folders of index files in an embedded Chroma's folder."""
    chroma = settings.data_dir / "chroma"
    if not chroma.exists():
        return set()
    return {entry.name for entry in chroma.iterdir() if entry.is_dir()}


def test_chunk_vectors_are_the_length_weighted_mean_of_their_sentences() -> None:
    chunks = [Chunk("d", 0, 0, 30, "x" * 30), Chunk("d", 1, 20, 40, "x" * 20)]
    sentences = [(0, 10), (11, 30), (31, 40)]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    built = chunk_vectors(chunks, sentences, vectors)
    # First chunk: 10 characters of the first sentence, 19 of the second.
    expected = np.array([10.0, 19.0]) / np.hypot(10.0, 19.0)
    assert np.allclose(built[0], expected, atol=1e-6)
    # Second chunk: 10 characters of the second sentence, 9 of the third.
    expected = np.array([-9.0, 10.0]) / np.hypot(9.0, 10.0)
    assert np.allclose(built[1], expected, atol=1e-6)
    with_title = chunk_vectors(chunks, sentences, vectors, np.array([0.0, 1.0]))
    assert np.allclose(np.linalg.norm(with_title, axis=1), 1.0)
    assert with_title[0][1] > built[0][1]


def test_token_weights_rank_rare_words_above_common_ones(store: Store, embedder,
                                                         settings: Settings) -> None:
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    weights = store.collection("articles").idf(search_tokens("lab Verhoeven zeppelin"))
    lab, verhoeven, zeppelin = (weights[t] for t in search_tokens("lab Verhoeven zeppelin"))
    # "lab" is in many chunks, "Verhoeven" in a few, "zeppelin" in none: it cannot be answered.
    assert lab < verhoeven < zeppelin
