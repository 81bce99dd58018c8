"""Server mode: the vectors on a real Chroma server (`chroma run`), shared by several citeqa
processes that share one data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chromadb
import httpx
import pytest
from typer.testing import CliRunner

from citeqa import Citeqa
from core.errors import ConfigurationError
from core.settings import Settings
from core.text import search_tokens
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_paths
from index.store import Store
from server.cli import app
from tests.conftest import LAB_DOC, SAMPLES, _free_port, serving, wait_until_up

pytestmark = pytest.mark.server

NEW_ARTICLE = """# Quarry Museum Names Its First Curator

The Hollowmere Quarry Museum has appointed the geologist Ilse Brandvold as its first curator.
Brandvold catalogued the zanzibarite crystals found in the quarry's lower terraces and will
open the museum's mineral hall in May.
"""


def _server_collection(settings: Settings, name: str) -> chromadb.Collection:
    """The Chroma collection as the server itself holds it, read by a client of our own."""
    url = httpx.URL(settings.chroma_url or "")
    client = chromadb.HttpClient(host=url.host, port=url.port,
                                 database=settings.chroma_database)
    return client.get_collection(name)


def _ingest_samples(settings: Settings, embedder: SentenceTransformerEmbedder) -> Store:
    store = Store.from_settings(settings)
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    return store


def test_ingest_ask_and_delete_keep_the_vectors_on_the_server(
        server_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    store = _ingest_samples(server_settings, embedder)
    services = Citeqa.build(server_settings, embedder=embedder, store=store)
    chunks = store.collection("articles").count_chunks()
    assert _server_collection(server_settings, "articles").count() == chunks

    answer = services.assistant.ask("Who co-leads the lab?")
    assert "Verhoeven" in answer.answer
    citation = answer.citations[0]
    assert citation.doc_id == LAB_DOC
    text = store.collection("articles").document(LAB_DOC).document.text
    assert text[citation.start:citation.end] == citation.quote

    lab_chunks = store.collection("articles").document(LAB_DOC).chunks
    store.collection("articles").delete([LAB_DOC])
    assert _server_collection(server_settings, "articles").count() == chunks - lab_chunks
    answer = services.assistant.ask("Who co-leads the lab?")
    assert all(c.doc_id != LAB_DOC for c in answer.citations)
    assert all(p.doc_id != LAB_DOC for p in answer.passages)


def test_a_second_process_sees_writes_in_both_indexes(
        server_settings: Settings, embedder: SentenceTransformerEmbedder,
        tmp_path: Path) -> None:
    # Two Store objects over one folder and one server stand for two workers.
    writer = _ingest_samples(server_settings, embedder)
    reader = Store.from_settings(server_settings).collection("articles")
    assert reader.lexical_search(search_tokens("zanzibarite"), 5) == []

    article = tmp_path / "quarry-museum.md"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    ingest_paths([article], store=writer, collection="articles", embedder=embedder,
                 settings=server_settings)

    lexical = reader.lexical_search(search_tokens("zanzibarite"), 5)
    assert [reader.chunks([hit.chunk_id])[hit.chunk_id].document.id for hit in lexical] == [
        "quarry-museum.md"]
    dense = reader.dense_search(embedder.embed_query("Who is the museum's first curator?"), 1)
    assert dense[0].chunk_id in {hit.chunk_id for hit in lexical}


def test_a_collection_of_another_data_folder_is_refused_and_left_alone(
        server_settings: Settings, embedder: SentenceTransformerEmbedder,
        tmp_path: Path) -> None:
    _ingest_samples(server_settings, embedder)
    before = _server_collection(server_settings, "articles").count()
    stranger = server_settings.model_copy(update={"data_dir": tmp_path / "other"})
    with pytest.raises(ConfigurationError) as refused:
        ingest_paths([SAMPLES / LAB_DOC], store=Store.from_settings(stranger),
                     collection="articles", embedder=embedder, settings=stranger)
    assert refused.value.code == "chroma_collection_taken"
    assert "CITEQA_DATA_DIR" in str(refused.value)
    assert Store.from_settings(stranger).collections() == []
    assert _server_collection(server_settings, "articles").count() == before


def test_a_folder_opened_without_its_chroma_server_is_refused_not_emptied(
        server_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    _ingest_samples(server_settings, embedder)
    embedded = server_settings.model_copy(update={"chroma_url": None})
    with pytest.raises(ConfigurationError) as refused:
        Store.from_settings(embedded).collection("articles")
    assert refused.value.code == "vectors_not_found"
    assert "CITEQA_CHROMA_URL" in str(refused.value)
    # Nothing was "repaired" away: with its server, the folder answers as before.
    assert Store.from_settings(server_settings).collection("articles").count_documents() == 10


def test_an_unreachable_chroma_server_is_a_clear_cli_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    # Ingest, which may start a data folder: `ask` on a new folder stops earlier, at "no data".
    article = tmp_path / "tide.md"
    article.write_text("# Spring Tides\n\nThe tide reached 4.1 metres.\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "ingest",
                                      str(article)], env={"CITEQA_CHROMA_URL": url})
    assert result.exit_code != 0
    assert url in result.output and "chroma run" in result.output


def test_a_bad_chroma_url_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Settings(chroma_url="ftp://somewhere")


@pytest.mark.slow
def test_two_servers_on_one_chroma_server_answer_from_each_others_writes(
        server_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    _ingest_samples(server_settings, embedder)
    env = {"CITEQA_CHROMA_URL": server_settings.chroma_url or "",
           "CITEQA_CHROMA_DATABASE": server_settings.chroma_database}
    with serving(server_settings.data_dir, env=env) as first, \
            serving(server_settings.data_dir, env=env) as second:
        upload = httpx.post(f"{first}/v1/documents", timeout=60, files={
            "file": ("quarry-museum.md", NEW_ARTICLE.encode(), "text/markdown")})
        assert upload.status_code == 200, upload.text
        question = {"question": "Who is the first curator of the quarry museum?"}
        answer = httpx.post(f"{second}/v1/ask", json=question, timeout=60).json()
        assert "Brandvold" in answer["answer"]
        assert answer["citations"][0]["doc_id"] == "quarry-museum.md"

        deleted = httpx.delete(f"{second}/v1/documents/quarry-museum.md", timeout=60)
        assert deleted.status_code in (200, 204), deleted.text
        answer = httpx.post(f"{first}/v1/ask", json=question, timeout=60).json()
        assert all(p["doc_id"] != "quarry-museum.md" for p in answer["passages"])


@pytest.mark.slow
def test_serve_with_two_workers_runs_two_ready_processes(
        server_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    _ingest_samples(server_settings, embedder)
    port = _free_port()
    log = server_settings.data_dir.parent / "workers.log"
    env = {"CITEQA_CHROMA_URL": server_settings.chroma_url or "",
           "CITEQA_CHROMA_DATABASE": server_settings.chroma_database, "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from server.cli import main; main()", "--data-dir",
             str(server_settings.data_dir), "serve", "--port", str(port), "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(process, f"{base}/readyz", what="citeqa serve --workers 2", log=log)
            workers: set[int] = set()
            for _ in range(200):
                # A new connection each time, so the kernel spreads them over the workers.
                ready = httpx.get(f"{base}/readyz", timeout=30)
                if ready.status_code == 200:
                    workers.add(ready.json()["worker"])
                if len(workers) == 2:
                    break
            assert len(workers) == 2, log.read_text()
            for _ in range(4):
                answer = httpx.post(f"{base}/v1/ask", json={"question": "Who co-leads the lab?"},
                                    timeout=60).json()
                assert answer["citations"][0]["doc_id"] == LAB_DOC
            # /metrics counts the requests of both workers, whichever one is scraped.
            for _ in range(4):
                metrics = httpx.get(f"{base}/metrics", timeout=30).text
                assert ('citeqa_requests_total{method="POST",route="/v1/ask",status="200"} 4.0'
                        in metrics), metrics
        finally:
            process.terminate()
            process.wait(timeout=60)
