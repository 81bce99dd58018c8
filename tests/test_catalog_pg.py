"""The catalog on PostgreSQL (CITEQA_CATALOG_URL): hosts that share no folder, one catalog.

Run against a real throwaway server (`make test` starts one; `pytest --catalog-url URL`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import SAMPLES, _free_port, new_chroma_database, serving
from typer.testing import CliRunner

from core import text
from core.errors import ConfigurationError
from core.settings import Settings
from index.catalog_pg import POOL_SIZE, WRITE_LOCK_KEY, PostgresCatalog, latest
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_paths
from index.store import Store
from server.cli import app

pytestmark = pytest.mark.postgres

# Our own invented article: no word of its answer is in the sample articles.
FERRY_ARTICLE = """# Saltmarsh Ferry Gets a New Skipper

The Quillhaven ferry across the Saltmarsh estuary will be skippered from June by \
Odalys Brecken, who ran the island's lifeboat for eleven years. The ferry carries forty \
passengers and makes the crossing nine times a day.
"""

_HOLD_LOCK = """
import sys
from pathlib import Path
from index.store import Store
from server.cli import app
store = Store(Path(sys.argv[1]), catalog_url=sys.argv[2])
with store.write_lock():
    print("held", flush=True)
    sys.stdin.read()
"""


def _lock_is_free(catalog_url: str) -> bool:
    """Whether the write lock can be taken now (taken and released at once if so)."""
    with psycopg.connect(catalog_url, autocommit=True) as db:
        row = db.execute("SELECT pg_try_advisory_lock(%s)", (WRITE_LOCK_KEY,)).fetchone()
        taken = bool(row and row[0])
        if taken:
            db.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK_KEY,))
        return taken


def test_the_write_lock_holds_off_other_hosts_and_dies_with_its_holder(
        catalog_url: str, tmp_path: Path) -> None:
    Store(tmp_path / "first", catalog_url=catalog_url).close()  # creates the tables
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path / "other"), catalog_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        assert not _lock_is_free(catalog_url)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The server notices the dead connection and drops its lock; allow it a few moments.
    for _ in range(100):
        if _lock_is_free(catalog_url):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the write lock outlived the process killed while holding it")
    # Nothing was needed on disk for it: neither folder has a lock file or a catalog file.
    assert not list(tmp_path.glob("*/write.lock"))
    assert not list(tmp_path.glob("*/catalog.sqlite3"))


def test_a_catalog_from_a_newer_citeqa_is_refused_and_left_alone(
        catalog_url: str, tmp_path: Path) -> None:
    Store(tmp_path / "data", catalog_url=catalog_url).close()
    with psycopg.connect(catalog_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = %s", (latest() + 1,))

    with pytest.raises(ConfigurationError) as refused:
        Store(tmp_path / "data", catalog_url=catalog_url)

    assert refused.value.code == "catalog_too_new"
    with psycopg.connect(catalog_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(latest() + 1,)]


def test_an_unreachable_catalog_is_named_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://citeqa:s3cret-word@127.0.0.1:{_free_port()}/nowhere"
    with pytest.raises(ConfigurationError) as refused:
        Store.from_settings(Settings(data_dir=tmp_path / "data", catalog_url=url))
    assert refused.value.code == "catalog_unavailable"
    assert "nowhere" in refused.value.detail
    assert "s3cret-word" not in refused.value.detail


@pytest.mark.server
def test_two_hosts_with_separate_folders_share_uploads_and_deletes(
        catalog_url: str, chroma_server: str, tmp_path: Path) -> None:
    shared = {"CITEQA_CATALOG_URL": catalog_url, "CITEQA_CHROMA_URL": chroma_server,
              "CITEQA_CHROMA_DATABASE": new_chroma_database(chroma_server)}
    question = {"question": "Who will skipper the Quillhaven ferry?"}
    for host in ("host-a", "host-b"):
        (tmp_path / host).mkdir()
    with serving(tmp_path / "host-a" / "data", env=shared) as host_a, \
            serving(tmp_path / "host-b" / "data", env=shared) as host_b, \
            httpx.Client(timeout=120) as http:
        uploaded = http.post(f"{host_a}/v1/documents", files=[
            ("file", ("ferry.md", FERRY_ARTICLE.encode(), "text/markdown"))])
        assert uploaded.status_code == 200, uploaded.text

        # The other host answers from it: its catalog rows, its vectors, its words (BM25).
        answer = http.post(f"{host_b}/v1/ask", json=question).json()
        assert answer["citations"][0]["doc_id"] == "ferry.md", answer
        assert "Odalys Brecken" in answer["answer"]
        found = http.post(f"{host_b}/v1/search", json={"query": "Quillhaven Brecken"}).json()
        assert [p["doc_id"] for p in found["passages"]][:1] == ["ferry.md"]

        deleted = http.delete(f"{host_a}/v1/documents/ferry.md")
        assert deleted.status_code == 200, deleted.text

        assert http.get(f"{host_b}/v1/documents/ferry.md").status_code == 404
        listed = http.get(f"{host_b}/v1/documents").json()["documents"]
        assert "ferry.md" not in {d["id"] for d in listed}
        after = http.post(f"{host_b}/v1/ask", json=question).json()
        assert "ferry.md" not in {c["doc_id"] for c in after["citations"]}, after
        assert "Brecken" not in after["answer"]
        found = http.post(f"{host_b}/v1/search", json={"query": "Quillhaven Brecken"}).json()
        assert "ferry.md" not in {p["doc_id"] for p in found["passages"]}

    # Neither host keeps anything another needs: no catalog or lock file, only local caches.
    for host in ("host-a", "host-b"):
        folder = tmp_path / host / "data"
        assert not (folder / "catalog.sqlite3").exists()
        assert not (folder / "write.lock").exists()
        assert not (folder / "chroma").exists()


def test_many_threads_share_a_few_connections(catalog_url: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "data", catalog_url=catalog_url)
    database = httpx.URL(catalog_url).path.lstrip("/")
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            for _ in range(50):
                store.collections()
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=busy) for _ in range(40)]
    seen = []
    with psycopg.connect(catalog_url, autocommit=True) as monitor:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            row = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()", (database,)).fetchone()
            seen.append(int(row[0]) if row else 0)
        for thread in threads:
            thread.join()
    store.close()

    assert errors == []
    assert 0 < max(seen) <= POOL_SIZE, f"{max(seen)} connections for 40 threads"


def test_a_new_analyser_re_tokenises_and_stops_writers_of_the_old_one(
        catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    older = PostgresCatalog(catalog_url)
    older.create_collection("articles", model="m", dimension=3)
    version = older.version("articles")
    monkeypatch.setattr(text, "ANALYSER_VERSION", text.ANALYSER_VERSION + 1)

    newer = PostgresCatalog(catalog_url)

    assert newer.analyser_version == text.ANALYSER_VERSION
    # Every host's lexical index is stale now: the version moved on.
    assert newer.version("articles") > version
    with pytest.raises(ConfigurationError) as refused:
        older.create_collection("other", model="m", dimension=3)
    assert refused.value.code == "catalog_changed"
    assert [record.name for record in newer.collections()] == ["articles"]
    older.close()
    newer.close()


@pytest.mark.server
def test_a_host_with_an_empty_folder_lists_what_another_host_ingested(
        catalog_url: str, chroma_server: str, tmp_path: Path,
        embedder: SentenceTransformerEmbedder) -> None:
    shared = {"CITEQA_CATALOG_URL": catalog_url, "CITEQA_CHROMA_URL": chroma_server,
              "CITEQA_CHROMA_DATABASE": new_chroma_database(chroma_server)}
    settings = Settings(data_dir=tmp_path / "host-a", catalog_url=catalog_url,
                        chroma_url=chroma_server,
                        chroma_database=shared["CITEQA_CHROMA_DATABASE"])
    store = Store.from_settings(settings)
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    store.close()

    listed = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "host-b"), "docs", "list",
                                      "--json"], env=shared, catch_exceptions=False)

    assert listed.exit_code == 0, listed.output
    assert {d["id"] for d in json.loads(listed.output)} == {p.name for p in SAMPLES.iterdir()}
