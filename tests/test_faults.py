"""Crash safety and concurrency, with real processes.

`citeqa ingest` is killed with SIGKILL, at chosen steps of a write and at delays, then run again:
after each kill the data folder, opened as citeqa opens it, holds every document either fully
(catalog row, every chunk, every chunk vector and sentence vector, every BM25 entry) or not at
all, with no duplicate and no orphaned chunk; the last run completes the ingest and answers.
A real `citeqa serve` answers questions while documents are uploaded to it and a CLI ingest
writes into the same data folder.

With `--catalog-url` every test runs with the catalog on PostgreSQL instead (a new database
each, named to every process by CITEQA_CATALOG_URL): the commit point and the write lock are
then the server's, and the kills must leave it just as whole.

The corpus is written here, by code: invented depots with invented names, so no question can
be answered from anything but these texts. Chunks are small (CITEQA_CHUNK_SIZE=100), so a
corpus that embeds in a few seconds still takes several write batches.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import httpx
import numpy as np
import pytest
from conftest import (
    LAB_DOC,
    SAMPLES,
    _catalog_server,
    copy_data_folder,
    new_catalog_database,
    seed_models,
    serving,
)

from citeqa import Citeqa
from core.documents import Filters
from core.settings import Settings
from core.text import search_tokens, sentence_spans
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_paths
from index.store import Store

pytestmark = pytest.mark.slow

COLLECTION = "articles"
# Small chunks (and no overlap), for CLI runs and `ingest_in_process` alike, in batches of 256:
# 30 depots make 300 chunks, two batches to kill between.
SMALL_CHUNKS = {"CITEQA_CHUNK_SIZE": "100", "CITEQA_CHUNK_OVERLAP": "0",
                "CITEQA_INGEST_BATCH_CHUNKS": "256"}
_SYLLABLES = ["bar", "dok", "fen", "gul", "hom", "jat", "kip", "lun", "mor", "nad", "pik", "rul",
              "sot", "tam", "vek", "zor"]
_GOODS = ["amber", "rope", "salt", "tin", "flax", "cork", "slate", "wool", "resin", "clay"]


@pytest.fixture(autouse=True)
def catalog_on_postgres(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --catalog-url: a new PostgreSQL catalog for the test, named to every process (this
    one's settings and every citeqa it starts) by CITEQA_CATALOG_URL."""
    url = _catalog_server(request.config)
    if url is not None:
        monkeypatch.setenv("CITEQA_CATALOG_URL", new_catalog_database(url))


def open_store(data_dir: Path) -> Store:
    """The store of the folder as citeqa opens it (with the catalog the environment names)."""
    return Store.from_settings(Settings(data_dir=data_dir))


def close(client: Any) -> None:
    """Release a Chroma client, as a process's exit does: the next open reads the disk afresh."""
    client.close()


# The corpus ---------------------------------------------------------------------------------


def invented(n: int, prefix: str) -> str:
    """A made-up word, different for every n (< 4096), that no article contains."""
    return prefix + "".join(_SYLLABLES[(n >> shift) & 15] for shift in (8, 4, 0))


@dataclass
class Corpus:
    """Markdown files of invented depots; the texts each document id may hold."""

    folder: Path
    texts: dict[str, str] = field(default_factory=dict)
    versions: dict[str, set[str]] = field(default_factory=dict)

    def write(self, numbers: range | list[int], *, edition: int = 1) -> None:
        """Write these depots' files (a new edition replaces the file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for n in numbers:
            doc_id, text = self.remember(n, edition)
            (self.folder / doc_id).write_text(text, encoding="utf-8")

    def remember(self, n: int, edition: int = 1) -> tuple[str, str]:
        """A depot that is part of the collection but not of the folder (it is uploaded)."""
        doc_id, text = f"depot-{n:03d}.md", depot_text(n, edition)
        self.texts[doc_id] = text
        self.versions.setdefault(doc_id, set()).add(text)
        return doc_id, text


def depot_text(n: int, edition: int) -> str:
    name, keeper = invented(n, "Kv"), invented(n, "Ol").capitalize()
    lines = [f"# The {name} depot", f"The {name} depot is run by {keeper} Marsh."]
    for k in range(9):
        lines.append(f"{name} note {k}: the depot keeps {n * 13 + k + edition * 1000} crates "
                     f"of {_GOODS[k]}.")
    if edition > 1:
        lines.append(f"{name} notice: edition {edition} of this ledger replaces the last one.")
    return "\n\n".join(lines) + "\n"


def name_token(doc_id: str) -> str:
    """The search token of the depot's invented name: every chunk of the document holds it."""
    [token] = search_tokens(invented(int(doc_id[6:9]), "Kv"))
    return token


# Running and killing `citeqa ingest` ----------------------------------------------------------

# Runs the real CLI; with FAULT_STEP set, it first arranges to SIGKILL itself at that step of a
# write (the FAULT_NTH time the step is reached), the way a power cut or the OOM killer would.
_CLI_WITH_FAULT = textwrap.dedent("""
    import os, pathlib, signal
    step, nth = os.environ.get("FAULT_STEP", ""), int(os.environ.get("FAULT_NTH", "1"))
    reached = [0]

    def at_step():
        reached[0] += 1
        if reached[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    if step:
        from index import catalog, lexical, vectors
        upsert, write = vectors.ChromaVectors.upsert_chunks, catalog.Catalog.write_documents
        bump, save, rename = catalog.Catalog._bump, lexical.LexicalIndex._save, pathlib.Path.rename
        inside = [False]

        def flagged(function):
            def run(*args, **kwargs):
                inside[0] = True
                try:
                    return function(*args, **kwargs)
                finally:
                    inside[0] = False
            return run

        if step == "chunk-vectors-written":
            def upsert_chunks(self, *args, **kwargs):
                upsert(self, *args, **kwargs)
                at_step()
            vectors.ChromaVectors.upsert_chunks = upsert_chunks
        elif step == "all-vectors-written":
            def write_documents(self, *args, **kwargs):
                at_step()
                return write(self, *args, **kwargs)
            catalog.Catalog.write_documents = write_documents
        elif step == "inside-catalog-transaction":
            def _bump(self, *args, **kwargs):
                bump(self, *args, **kwargs)
                if inside[0]:
                    at_step()
            catalog.Catalog.write_documents = flagged(write)
            catalog.Catalog._bump = _bump
        elif step == "catalog-committed":
            def write_documents(self, *args, **kwargs):
                replaced = write(self, *args, **kwargs)
                at_step()
                return replaced
            catalog.Catalog.write_documents = write_documents
        elif step == "lexical-index-swapped-out":
            def _rename(self, target):
                moved = rename(self, target)
                if inside[0]:
                    at_step()
                return moved
            lexical.LexicalIndex._save = flagged(save)
            pathlib.Path.rename = _rename
        else:
            raise SystemExit(f"unknown FAULT_STEP {step}")

    from server.cli import main
    main()
""")


class Ingest:
    """One `citeqa --data-dir D ingest FOLDER` process, its output logged to a file."""

    def __init__(self, data_dir: Path, source: Path, *, step: str = "", nth: int = 1) -> None:
        self.log = data_dir.parent / f"ingest-{time.monotonic_ns()}.log"
        seed_models(data_dir)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **SMALL_CHUNKS, "FAULT_STEP": step,
               "FAULT_NTH": str(nth)}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CLI_WITH_FAULT, "--data-dir", str(data_dir), "ingest",
                 str(source)], stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait(self, timeout: float = 300) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    @property
    def output(self) -> str:
        return self.log.read_text()


def committed(data_dir: Path, table: str = "documents") -> int:
    """Rows the catalog has committed, read as another process would (0 before any)."""
    url = os.environ.get("CITEQA_CATALOG_URL")
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            try:
                return int(pg.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            except psycopg.errors.UndefinedTable:  # tables not created yet
                return 0
    path = data_dir / "catalog.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()


def leftover_vectors(data_dir: Path) -> int:
    """Chunk vectors in Chroma beyond what the catalog lists, before any repair: what a killed
    run left behind, read straight from Chroma."""
    client = chromadb.PersistentClient(path=str(data_dir / "chroma"))
    try:
        vectors = client.get_collection(COLLECTION).count()
    finally:
        close(client)
    return vectors - committed(data_dir, "chunks")


# The consistency check ------------------------------------------------------------------------


def check_consistent(data_dir: Path, corpus: Corpus, *, others: frozenset[str] = frozenset()
                     ) -> dict[str, str]:
    """Open the folder as citeqa does and check that its four indexes agree; doc id -> text.

    Opening repairs what a killed run left (vectors the catalog does not know, documents whose
    vectors are incomplete); everything checked here is what a user would be served from.
    `others` are documents from elsewhere (the samples), checked for completeness only.
    """
    store = open_store(data_dir)
    try:
        if COLLECTION not in {record.name for record in store.collections()}:
            return {}
        collection = store.collection(COLLECTION)
        documents = {stored.document.id: stored for stored in collection.documents()}
        catalog_ids = collection.chunk_ids()
        records = collection.chunks(sorted(catalog_ids))
        assert set(records) == catalog_ids
        assert collection.count_chunks() == len(catalog_ids)
        assert collection.count_documents() == len(documents)

        # Dense vectors: exactly one per catalog chunk, and every one of them retrievable.
        # Chroma ids are unique, so equal counts and equal id sets mean one vector per chunk.
        chroma_ids = collection.vector_ids()
        assert collection.count_vectors() == len(chroma_ids), "duplicate chunk vectors"
        assert chroma_ids == catalog_ids, (
            f"chunk vectors and catalog differ: {len(chroma_ids - catalog_ids)} orphaned, "
            f"{len(catalog_ids - chroma_ids)} missing")
        probe = np.ones(collection.dimension, dtype=np.float32) / np.sqrt(collection.dimension)
        found = {hit.chunk_id for hit in collection.dense_search(probe, len(catalog_ids) + 10)}
        assert found <= catalog_ids, f"dense search found {len(found - catalog_ids)} unknown chunks"

        # Sentence vectors (in the catalog): one per sentence of every stored document.
        sentence_starts: dict[str, set[int]] = {}
        for record in records.values():
            assert all(s.vector.shape == (collection.dimension,) for s in record.sentences)
            sentence_starts.setdefault(record.document.id, set()).update(
                s.start for s in record.sentences)
        sentence_docs = {doc_id: len(starts) for doc_id, starts in sentence_starts.items()}

        # Every document fully there: a text it was given, all its chunks once, all sentences.
        chunks_of: dict[str, list[int]] = {}
        for record in records.values():
            chunks_of.setdefault(record.document.id, []).append(record.index)
            assert record.document.text[record.start:record.end].strip()
        for doc_id, stored in documents.items():
            text = stored.document.text
            assert doc_id in others or text in corpus.versions.get(doc_id, set()), (
                f"{doc_id}: a text it was never given")
            assert sorted(chunks_of.get(doc_id, [])) == list(range(stored.chunks)), (
                f"{doc_id}: chunks {sorted(chunks_of.get(doc_id, []))}, "
                f"expected {stored.chunks}")
            assert sentence_docs.get(doc_id, 0) == len(sentence_spans(text)), (
                f"{doc_id}: {sentence_docs.get(doc_id, 0)} sentence vectors for "
                f"{len(sentence_spans(text))} sentences")
            only_it = Filters(doc_ids=(doc_id,))
            by_vector = collection.dense_search(probe, stored.chunks + 5, only_it)
            assert sorted(hit.chunk_id for hit in by_vector) == sorted(
                cid for cid, record in records.items() if record.document.id == doc_id), (
                f"{doc_id}: its chunk vectors are not all found")
        assert set(sentence_docs) <= set(documents)

        # BM25: each depot's name finds exactly its stored chunks, and nothing of one that is
        # not stored (a lexical index built before a crash must not serve what was lost).
        for doc_id in corpus.versions:
            hits = collection.lexical_search([name_token(doc_id)], k=10_000)
            expected = {cid for cid, record in records.items()
                        if record.document.id == doc_id}
            assert {hit.chunk_id for hit in hits} == expected, f"{doc_id}: BM25 disagrees"
        return {doc_id: stored.document.text for doc_id, stored in documents.items()}
    finally:
        store.close()


def ingest_in_process(data_dir: Path, corpus: Corpus, embedder: SentenceTransformerEmbedder
                      ) -> None:
    """`citeqa ingest` of the corpus, run here; the store is closed after, as at a CLI's exit."""
    store = open_store(data_dir)
    try:
        ingest_paths([corpus.folder], store=store, collection=COLLECTION, embedder=embedder,
                     settings=Settings(data_dir=data_dir, chunk_size=100, chunk_overlap=0))
    finally:
        store.close()


def answers_from(data_dir: Path, embedder: SentenceTransformerEmbedder, doc_id: str) -> None:
    """A fresh citeqa over the folder answers a question about `doc_id` from it."""
    n = int(doc_id[6:9])
    services = Citeqa.build(Settings(data_dir=data_dir), embedder=embedder)
    try:
        answer = services.assistant.ask(f"Who runs the {invented(n, 'Kv')} depot?",
                                        collection=COLLECTION)
    finally:
        services.store.close()
    assert not answer.abstained
    assert answer.citations[0].doc_id == doc_id
    assert f"{invented(n, 'Ol').capitalize()} Marsh" in answer.answer


# Killed at each step of a write ---------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """Where a run is killed, and what the folder must hold afterwards."""

    step: str
    nth: int
    expect: str  # what the run must have committed: "some", "same", "more" or "all"
    why: str
    debris: bool  # whether the kill leaves vectors the catalog does not list, to be repaired


# One data folder through a sequence of killed runs, each resuming where the last stopped.
# 30 depots of about 10 small chunks: two write batches (of 256 chunks) on the first run.
KILLS = [
    Kill("chunk-vectors-written", 2, "some",
         "second batch: its chunk vectors in Chroma, no catalog rows",
         debris=True),
    Kill("all-vectors-written", 1, "same",
         "the resumed run's first batch of vectors in Chroma, the catalog not written",
         debris=True),
    Kill("inside-catalog-transaction", 1, "same",
         "catalog rows written inside the transaction, not committed", debris=True),
    Kill("catalog-committed", 1, "all",
         "the catalog committed, the lexical index never rebuilt", debris=False),
]
# Then a new edition of some depots (new chunk ids replace old ones) and a few new depots.
UPDATE_KILLS = [
    Kill("catalog-committed", 1, "more",
         "replacing chunks committed, the replaced vectors not yet deleted from Chroma",
         debris=True),
    Kill("lexical-index-swapped-out", 1, "more",
         "a changed depot committed, a BM25 segment renamed into place, not yet used",
         debris=False),
]


def test_ingest_killed_at_each_step_of_a_write_loses_nothing_and_resumes(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    data_dir = tmp_path / "data"
    corpus = Corpus(tmp_path / "depots")
    corpus.write(range(30))
    stored: dict[str, str] = {}

    def killed_run(kill: Kill) -> None:
        nonlocal stored
        run = Ingest(data_dir, corpus.folder, step=kill.step, nth=kill.nth)
        code = run.wait()
        assert code == -signal.SIGKILL, (
            f"the run was to be killed at {kill.step} ({kill.why}) but exited {code}:\n"
            f"{run.output[-2000:]}")
        message = f"after a kill at {kill.step} ({kill.why})"
        assert (leftover_vectors(data_dir) > 0) == kill.debris, message
        after = check_consistent(data_dir, corpus)
        if kill.expect == "some":
            assert 0 < len(after) < len(corpus.texts), message
        elif kill.expect == "same":
            assert after == stored, message
        elif kill.expect == "more":
            assert set(after) >= set(stored) and after != stored, message
        else:
            assert after == corpus.texts, message
        stored = after

    for kill in KILLS:
        killed_run(kill)

    corpus.write(range(25, 34), edition=2)  # 5 depots change, 4 are new
    for kill in UPDATE_KILLS:
        killed_run(kill)
        if kill.step == "catalog-committed":
            # Another edition, so the next run has something to write and a BM25 to rebuild.
            corpus.write([33], edition=3)

    final = Ingest(data_dir, corpus.folder)
    assert final.wait() == 0, final.output
    assert "added 0" in final.output, "the killed runs had written everything already"
    assert check_consistent(data_dir, corpus) == corpus.texts
    for doc_id in ("depot-000.md", "depot-029.md", "depot-027.md", "depot-033.md"):
        answers_from(data_dir, embedder, doc_id)


def test_a_kill_while_saving_the_lexical_index_leaves_no_stray_copies(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    data_dir = tmp_path / "data"
    corpus = Corpus(tmp_path / "depots")
    corpus.write(range(3))
    ingest_in_process(data_dir, corpus, embedder)  # builds the BM25 folder the kill swaps
    corpus.write([2], edition=2)
    run = Ingest(data_dir, corpus.folder, step="lexical-index-swapped-out")
    assert run.wait() == -signal.SIGKILL, run.output

    ingest_in_process(data_dir, corpus, embedder)

    assert check_consistent(data_dir, corpus) == corpus.texts
    assert sorted(path.name for path in (data_dir / "lexical").iterdir()) == [COLLECTION]


# Killed at delays -----------------------------------------------------------------------------


# Seconds after the run's first commit: right after it (the next batch is being embedded), and
# a moment later (inside the next batch's embedding or write, or after the run's end).
DELAYS = [0.0, 0.3]


def test_ingest_killed_at_delays_loses_nothing_and_resumes(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    data_dir = tmp_path / "data"
    corpus = Corpus(tmp_path / "depots")
    corpus.write(range(55))  # about 550 chunks: three write batches
    killed_mid_ingest = 0

    for delay in DELAYS:
        before = committed(data_dir)
        run = Ingest(data_dir, corpus.folder)
        while run.process.poll() is None and committed(data_dir) <= before:
            time.sleep(0.01)
        time.sleep(delay)
        finished = run.process.poll() is not None
        run.kill()
        stored = check_consistent(data_dir, corpus)
        assert len(stored) >= before, f"a kill {delay} s after a commit lost documents"
        if not finished and len(stored) < len(corpus.texts):
            killed_mid_ingest += 1
        if len(stored) == len(corpus.texts):
            break

    assert killed_mid_ingest >= 1, "no kill landed while documents were still being written"
    final = Ingest(data_dir, corpus.folder)
    assert final.wait() == 0, final.output
    assert check_consistent(data_dir, corpus) == corpus.texts
    answers_from(data_dir, embedder, "depot-054.md")


# Ingesting while serving -----------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, _sample_template: Settings, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[Path, str]]:
    """A real `citeqa serve` over a copy of the sample articles: (data folder, base URL).

    One per test: what another test left in the folder would change what this one finds.
    """
    data_dir = tmp_path / "served" / "data"
    copy_data_folder(_sample_template.data_dir, data_dir)
    if _sample_template.catalog_url:
        monkeypatch.setenv("CITEQA_CATALOG_URL", new_catalog_database(
            _sample_template.catalog_url, template=_sample_template.catalog_url))
    with serving(data_dir) as base:
        yield data_dir, base


@dataclass
class Traffic:
    """Questions asked in a loop on a thread, and what came back."""

    base: str
    failures: list[str] = field(default_factory=list)
    answered: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=120) as http:
            while not self.stop.is_set():
                for method, path, body in (
                        ("POST", "/v1/ask", {"question": "Who co-leads the lab?"}),
                        ("POST", "/v1/search", {"query": "tram line opening"}),
                        ("GET", "/v1/documents", None),
                        ("GET", "/v1/collections", None)):
                    response = http.request(method, path, json=body)
                    if response.status_code != 200:
                        self.failures.append(f"{method} {path}: {response.status_code} "
                                             f"{response.text[:300]}")
                    elif path == "/v1/ask":
                        cited = [c["doc_id"] for c in response.json()["citations"]]
                        if cited[:1] != [LAB_DOC]:
                            self.failures.append(f"the lab question cited {cited}")
                        self.answered += 1


def test_questions_and_uploads_go_on_while_a_cli_ingest_writes_the_same_folder(
        served: tuple[Path, str], tmp_path: Path, embedder: SentenceTransformerEmbedder
        ) -> None:
    data_dir, base = served
    corpus = Corpus(tmp_path / "depots")
    corpus.write(range(30))
    traffic = [Traffic(base), Traffic(base)]
    threads = [threading.Thread(target=t.run, daemon=True) for t in traffic]
    for thread in threads:
        thread.start()
    uploads: list[Any] = []
    try:
        ingest = Ingest(data_dir, corpus.folder)
        # Upload while the CLI process runs (before, during and after its writes).
        with httpx.Client(base_url=base, timeout=300) as http:
            n = 100
            while ingest.process.poll() is None or n < 103:
                doc_id, text = corpus.remember(n)
                uploads.append(http.post("/v1/documents", files=[
                    ("file", (doc_id, text.encode(), "text/markdown"))]))
                n += 1
                time.sleep(0.3)
        assert ingest.wait() == 0, ingest.output
    finally:
        for t in traffic:
            t.stop.set()
        for thread in threads:
            thread.join(timeout=120)

    assert "added 30" in ingest.output
    assert all(t.answered > 0 for t in traffic)
    assert [f for t in traffic for f in t.failures] == []
    assert [u.status_code for u in uploads] == [200] * len(uploads), [u.text for u in uploads]
    with httpx.Client(base_url=base, timeout=120) as http:
        listed = {d["id"] for d in http.get("/v1/documents").json()["documents"]}
        assert set(corpus.texts) <= listed
        for doc_id in ("depot-100.md", f"depot-{n - 1:03d}.md"):
            number = int(doc_id[6:9])
            answer = http.post("/v1/ask", json={
                "question": f"Who runs the {invented(number, 'Kv')} depot?"}).json()
            assert answer["citations"][0]["doc_id"] == doc_id, answer
    # Read by a fresh process, the folder is whole: every document of both writers, complete.
    samples = frozenset(path.name for path in SAMPLES.iterdir())
    stored = check_consistent(data_dir, corpus, others=samples)
    assert set(stored) == set(corpus.texts) | samples
    answers_from(data_dir, embedder, "depot-029.md")


def test_a_running_server_finds_by_meaning_what_a_cli_ingest_added(
        served: tuple[Path, str], tmp_path: Path, embedder: SentenceTransformerEmbedder
        ) -> None:
    data_dir, base = served
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "glassworks.md").write_text(
        "# Harbour Glassworks\n\nThe Vellmoor glassworks blows bottles for the island's "
        "cider makers and employs forty people.\n", encoding="utf-8")
    ingest = Ingest(data_dir, folder)
    assert ingest.wait() == 0, ingest.output
    # No word in common with the article: only its vectors can find it.
    query = "factory producing containers for apple drinks"
    only_it = Filters(doc_ids=("glassworks.md",))
    # A process that opens the folder now finds it.
    store = open_store(data_dir)
    try:
        hits = store.collection(COLLECTION).dense_search(embedder.embed_query(query), 5, only_it)
    finally:
        store.close()
    assert {hit.chunk_id.split("::")[0] for hit in hits} == {"glassworks.md"}, hits
    listed = {d["id"] for d in httpx.get(f"{base}/v1/documents").json()["documents"]}
    assert "glassworks.md" in listed  # the catalog is shared: the server lists it

    filtered = httpx.post(f"{base}/v1/search", timeout=120, json={
        "query": query, "filters": {"doc_ids": ["glassworks.md"]}})
    unfiltered = httpx.post(f"{base}/v1/search", timeout=120, json={"query": query})

    assert filtered.status_code == 200, filtered.text
    assert [p["doc_id"] for p in filtered.json()["passages"]][:1] == ["glassworks.md"]
    assert "glassworks.md" in {p["doc_id"] for p in unfiltered.json()["passages"]}, \
        unfiltered.json()
