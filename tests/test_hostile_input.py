"""Hostile input: bodies over the limit however they are sent, the key before the body, deep
metadata, hostile ids, control characters on the terminal and in the log, huge filter lists
and slow clients (issue 13, findings 3 and 6 and the low items of 8). In process or loopback
only, every loop bounded."""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.outputs import ChatGenerationChunk
from test_bad_input import nested_metadata
from typer.testing import CliRunner

from citeqa import Citeqa
from core.documents import MAX_ID_CHARS, Document, InvalidDocument, printable
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server import cli
from server.app import create_app
from server.connections import MAX_HEAD_BYTES, GuardedH11Protocol, connection_limits
from server.schemas import MAX_FILTER_ENTRIES

TEXT = "The Quarrow ferry sails at dawn; its captain is Maren Holt.\n"
SMALL_UPLOAD = 64 * 1024
# What the server accepts with that upload limit: the upload plus a multipart envelope.
BODY_LIMIT = SMALL_UPLOAD + 1024 * 1024
CHUNK = 64 * 1024
HUGE_BODY_CHUNKS = 300 * 16  # 300 MiB in 64 KiB chunks


# Body limits on the bytes received, and the key before the body (finding 3) ------------------


def _app(settings: Settings, embedder: SentenceTransformerEmbedder, **update: Any) -> FastAPI:
    """The whole app, with its services ready, to drive at the ASGI level."""
    small = settings.model_copy(update={"max_upload_bytes": SMALL_UPLOAD, **update})
    app = create_app(small, embedder=embedder)
    app.state.citeqa = Citeqa.build(small, embedder=embedder)
    return app


def _send_chunked(app: FastAPI, path: str, chunks: Iterable[bytes], *,
                  headers: dict[str, str] | None = None,
                  stall_after: int | None = None) -> tuple[int, dict[str, Any], int]:
    """POST `chunks` as a body without Content-Length, as an HTTP server hands it to the app:
    (status, JSON body, bytes the app pulled). Stops feeding (disconnects) well past the
    limit, so a server that keeps reading fails the test without holding 300 MB."""
    cutoff = BODY_LIMIT + 4 * 1024 * 1024
    source = iter(chunks)
    pulled = 0
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"transfer-encoding", b"chunked"),
                    *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())],
    }

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= cutoff:
            return {"type": "http.disconnect"}
        if stall_after is not None and pulled >= stall_after:
            await asyncio.sleep(3600)
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        # Bounded in time too: a hang is a failure, not a stuck suite.
        await asyncio.wait_for(app(scope, receive, send), timeout=60)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


JSON_START = b'{"question": "'
MULTIPART_START = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.txt"'
                   b"\r\nContent-Type: text/plain\r\n\r\n")


def _huge_body(start: bytes = JSON_START) -> Iterator[bytes]:
    """Up to 300 MiB: the opening of a body, then one letter for ever (almost)."""
    yield start
    for _ in range(HUGE_BODY_CHUNKS):
        yield b"x" * CHUNK


@pytest.mark.parametrize(("path", "content_type", "start"), [
    ("/v1/ask", "application/json", JSON_START),
    ("/v1/chat/completions", "application/json", JSON_START),
    ("/v1/documents", "application/json", JSON_START),
    ("/v1/documents", "multipart/form-data; boundary=xyz", MULTIPART_START),
])
def test_a_300_mb_chunked_body_is_refused_after_the_limit(
        settings: Settings, embedder: SentenceTransformerEmbedder, path: str,
        content_type: str, start: bytes) -> None:
    app = _app(settings, embedder)
    status, body, pulled = _send_chunked(app, path, _huge_body(start),
                                         headers={"content-type": content_type})
    assert status == 413, body
    assert "request_too_large" in json.dumps(body)
    # Refused as soon as the limit was passed: the rest was never read.
    assert pulled <= BODY_LIMIT + CHUNK


def test_a_keyed_server_refuses_a_keyless_body_before_reading_it(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    app = _app(settings, embedder, api_keys="sesame-42")
    for headers in ({}, {"authorization": "Bearer wrong"}):
        status, body, pulled = _send_chunked(
            app, "/v1/ask", _huge_body(), headers={"content-type": "application/json", **headers})
        assert status == 401, body
        assert body["error"]["code"] == "invalid_api_key"
        assert pulled == 0
    # With the key, the body is read, and still bounded.
    status, body, pulled = _send_chunked(
        app, "/v1/ask", _huge_body(),
        headers={"content-type": "application/json", "authorization": "Bearer sesame-42"})
    assert status == 413, body
    assert 0 < pulled <= BODY_LIMIT + CHUNK


def test_a_chunked_body_within_the_limit_still_works(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    app = _app(settings, embedder)
    document = json.dumps({"documents": [{"id": "ferry.txt", "text": TEXT}]}).encode()
    status, body, _ = _send_chunked(app, "/v1/documents", [document[:10], document[10:]],
                                    headers={"content-type": "application/json"})
    assert status == 200, body
    assert body["added"] == ["ferry.txt"]


def test_a_stalled_body_is_answered_408(settings: Settings, embedder: SentenceTransformerEmbedder,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import server.middleware

    monkeypatch.setattr(server.middleware, "BODY_IDLE_SECONDS", 0.5)
    app = _app(settings, embedder)
    started = time.monotonic()
    status, body, _ = _send_chunked(app, "/v1/ask", [b'{"question": "', b"x" * 100],
                                    headers={"content-type": "application/json"},
                                    stall_after=1)
    assert status == 408, body
    assert body["error"] == "request_timeout"
    assert time.monotonic() - started < 30


@contextmanager
def _uvicorn(app: FastAPI, *, protocol: type[GuardedH11Protocol] = GuardedH11Protocol
             ) -> Iterator[int]:
    """A real uvicorn with `citeqa serve`'s connection limits, on a free loopback port, in
    this process; yields the port."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    options = {**connection_limits(), "http": protocol}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def loopback_server(settings: Settings, embedder: SentenceTransformerEmbedder
                    ) -> Iterator[int]:
    """The app with a small upload limit behind a real uvicorn on loopback; yields the port."""
    small = settings.model_copy(update={"max_upload_bytes": SMALL_UPLOAD})
    with _uvicorn(create_app(small, embedder=embedder)) as port:
        yield port


def test_a_real_server_answers_413_to_a_chunked_body_without_reading_it(
        loopback_server: int) -> None:
    frame = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    sent = 0
    reply = b""
    with socket.create_connection(("127.0.0.1", loopback_server), timeout=5) as sock:
        sock.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        # poll, not select: late in the suite the socket's descriptor may be past 1024.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        for _ in range(HUGE_BODY_CHUNKS):  # at most 300 MiB
            if poller.poll(0):
                break
            try:
                sock.sendall(frame)
            except (TimeoutError, OSError):
                break  # the server stopped reading: its answer is waiting
            sent += CHUNK
        try:
            while b"\r\n\r\n" not in reply:
                piece = sock.recv(65536)
                if not piece:
                    break
                reply += piece
        except OSError:
            pass  # a reset after the answer: the server closed with the body unread
    # Far less than 300 MiB went out: the limit plus what the sockets' buffers hold.
    assert sent < BODY_LIMIT + 32 * 1024 * 1024
    # A server that closes with the body unread resets the connection, which may drop its
    # answer on the way; the ASGI tests above check the 413 itself.
    if reply:
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


# Deep and large metadata (finding 6) ---------------------------------------------------------


@pytest.fixture
def api(settings: Settings, embedder: SentenceTransformerEmbedder) -> Iterator[TestClient]:
    """The API over an empty data folder."""
    with TestClient(create_app(settings, embedder=embedder)) as test_client:
        yield test_client


def _add(api: TestClient, *documents: dict[str, Any]) -> Any:
    return api.post("/v1/documents", json={"documents": list(documents)})


def _upload_jsonl(api: TestClient, *records: dict[str, Any]) -> Any:
    data = "\n".join(json.dumps(r) for r in records).encode()
    return api.post("/v1/documents", files=[("file", ("docs.jsonl", data, "text/plain"))])


@pytest.mark.parametrize("depth", [21, 260, 900])
def test_deeply_nested_metadata_is_refused_and_the_list_still_works(
        api: TestClient, depth: int) -> None:
    good = {"id": "good.txt", "text": TEXT}
    deep = {"id": "deep.txt", "text": TEXT, "extra": nested_metadata(depth)}
    response = _upload_jsonl(api, good, deep)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == ["good.txt"]
    [skipped] = response.json()["skipped"]
    assert "deep" in skipped["reason"] and "20" in skipped["reason"]
    listed = api.get("/v1/documents")
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["documents"]] == ["good.txt"]


def test_deep_metadata_sent_as_json_is_refused(api: TestClient) -> None:
    response = _add(api, {"id": "deep.txt", "text": TEXT, "extra": nested_metadata(100)})
    assert response.status_code == 422, response.text
    assert "nests more than 20 levels" in response.json()["detail"]


def test_metadata_depth_up_to_the_limit_is_kept(api: TestClient) -> None:
    # The metadata object itself is the first level.
    response = _add(api, {"id": "ok.txt", "text": TEXT, "extra": nested_metadata(19)})
    assert response.status_code == 200, response.text
    assert api.get("/v1/documents/ok.txt").json()["metadata"]["extra"] == nested_metadata(19)


def test_oversized_metadata_is_refused_from_every_source(api: TestClient) -> None:
    big = "y" * 70_000
    refused = _add(api, {"id": "big.txt", "text": TEXT, "notes": big})
    assert refused.status_code == 422 and "65,536" in refused.json()["detail"]
    markdown = f"---\nnotes: {big}\n---\n# Ferry\n\n{TEXT}".encode()
    front = api.post("/v1/documents", files=[("file", ("ferry.md", markdown, "text/markdown"))])
    assert front.status_code == 422 and "65,536" in front.json()["detail"], front.text


# Ids (finding 8) -------------------------------------------------------------------------------


@pytest.mark.parametrize("doc_id", [
    "a\x1b[31mred", "two\nlines", "tab\there", "nul\x00", "del\x7f", "c1\x85next",
    "csi\x9b31m", "rtl\u202eexe.txt", "lre\u202a", "isolate\u2066x\u2069", "pdf\u202c",
    ".", "..", "x" * (MAX_ID_CHARS + 1), "cafe\u0301",
])
def test_hostile_ids_are_refused_by_every_source(api: TestClient, doc_id: str) -> None:
    with pytest.raises(InvalidDocument) as raised:
        Document(id=doc_id, text=TEXT)
    assert raised.value.code == "invalid_id"
    # The message shows the id escaped: no raw control character in it.
    assert printable(raised.value.detail) == raised.value.detail
    response = _add(api, {"id": doc_id, "text": TEXT}, {"id": "fine.txt", "text": TEXT})
    if len(doc_id) > MAX_ID_CHARS:
        # The JSON schema refuses the whole request first, naming the limit.
        assert response.status_code == 422 and "512" in response.json()["detail"]
    else:
        assert response.status_code == 200, response.text
        assert response.json()["added"] == ["fine.txt"]
        assert len(response.json()["skipped"]) == 1
    jsonl = _upload_jsonl(api, {"id": doc_id, "text": TEXT})
    assert jsonl.status_code == 422, jsonl.text


def test_a_megabyte_id_in_jsonl_is_refused_naming_the_limit(api: TestClient) -> None:
    response = _upload_jsonl(api, {"id": "x" * 1_000_000, "text": TEXT},
                             {"id": "fine.txt", "text": TEXT})
    assert response.status_code == 200, response.text
    [skipped] = response.json()["skipped"]
    assert "1,000,000 characters" in skipped["reason"] and "512" in skipped["reason"]
    # The refusal does not echo the megabyte back.
    assert len(response.text) < 10_000


def test_nfc_ids_and_ordinary_odd_ids_are_accepted() -> None:
    for doc_id in ("caf\u00e9", "x" * MAX_ID_CHARS, "...", "a/../b", "  spaced  ", "\u65e5\u672c"):
        assert Document(id=doc_id, text=TEXT).id == doc_id


# Control characters on the terminal and in the log (finding 8) --------------------------------


def test_docs_list_shows_control_characters_escaped(api: TestClient, settings: Settings) -> None:
    added = _add(api, {"id": "ferry.txt", "title": "Evil\x1b[2J\x1b]0;pwned\x07 [bold]x[/]",
                       "source": "rtl\u202egnp.exe", "text": TEXT})
    assert added.status_code == 200, added.text
    result = CliRunner().invoke(cli.app, ["--data-dir", str(settings.data_dir), "docs", "list"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\x1b[2J" in result.output and "\\u202e" in result.output
    assert "[bold]x[/]" in result.output  # markup in a title is text


def test_the_access_log_escapes_control_characters_in_paths(
        api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="citeqa.access"):
        api.get("/v1/documents/%1b%5b2J%e2%80%ae")
    lines = [r.getMessage() for r in caplog.records if r.name == "citeqa.access"]
    assert lines and all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert any("\\x1b[2J\\u202e" in line for line in lines)


def test_printable_escapes_only_what_it_must() -> None:
    assert printable("plain caf\u00e9 \u65e5\u672c") == "plain caf\u00e9 \u65e5\u672c"
    assert printable("a\x1bb\nc\u2066d\x9b") == "a\\x1bb\\nc\\u2066d\\x9b"


# Filter lists (finding 8) ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["doc_ids", "source"])
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask"])
def test_a_huge_filter_list_is_a_clear_422(client: TestClient, field: str, path: str) -> None:
    key = "query" if path == "/v1/search" else "question"
    ids = [f"doc-{n}.md" for n in range(40_000)]
    response = client.post(path, json={key: "Who co-leads the lab?", "filters": {field: ids}})
    assert response.status_code == 422, response.text[:500]
    assert f"{MAX_FILTER_ENTRIES:,}" in response.json()["detail"]
    assert len(response.text) < 2_000
    fits = client.post(path, json={key: "Who co-leads the lab?",
                                   "filters": {field: ids[:MAX_FILTER_ENTRIES]}})
    assert fits.status_code == 200, fits.text[:500]


# Slow clients (finding 8) ----------------------------------------------------------------------


def test_serve_uses_the_connection_limits(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    env = {name: None for name in ("CITEQA_API_KEYS", "CITEQA_API_KEYS_FILE", "CITEQA_HOST",
                                   "CITEQA_PORT", "CITEQA_ALLOWED_HOSTS")}
    result = CliRunner().invoke(cli.app, ["--data-dir", str(tmp_path / "data"), "serve"],
                                env=env)
    assert result.exit_code == 0, result.output
    [options] = calls
    # The limits the tests below put to a real server.
    assert options.items() >= connection_limits().items()


class QuickHead(GuardedH11Protocol):
    head_seconds = 1.0


def _reply(sock: socket.socket, limit_seconds: float = 15.0) -> bytes:
    """What the server sends until it closes the connection (at most `limit_seconds`)."""
    sock.settimeout(limit_seconds)
    reply = b""
    try:
        while piece := sock.recv(65536):
            reply += piece
    except OSError:
        pass
    return reply


def test_a_request_head_growing_past_16_kb_is_refused(loopback_server: int) -> None:
    with socket.create_connection(("127.0.0.1", loopback_server), timeout=5) as sock:
        # A head that never ends: without the limit the server would buffer it all.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
                     + b"a" * (MAX_HEAD_BYTES + 1024))
        reply = _reply(sock)
        # 400 at once, not the 408 of a head that took too long.
        assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    with socket.create_connection(("127.0.0.1", loopback_server), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     b"X-Pad: " + b"a" * 4096 + b"\r\n\r\n")
        assert _reply(sock).startswith(b"HTTP/1.1 200"), "an ordinary head was refused"


def test_a_request_head_that_never_ends_is_answered_408(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    with _uvicorn(create_app(settings, embedder=embedder), protocol=QuickHead) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        for line in range(100):  # a slowloris: one header every 0.1 s, at most 10 s
            if poller.poll(100):
                break
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % line)
            except OSError:
                break
        reply = _reply(sock)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert time.monotonic() - started < 9, "the trickle was allowed to go on"


def test_a_silent_connection_is_closed_without_an_answer(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    with _uvicorn(create_app(settings, embedder=embedder), protocol=QuickHead) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        assert _reply(sock) == b""
        assert time.monotonic() - started < 14, "the idle connection was kept open"


def test_a_kept_alive_connection_serves_requests_and_each_head_gets_its_own_clock(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    with _uvicorn(create_app(settings, embedder=embedder), protocol=QuickHead) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(3):
            # Each request starts after the previous head's deadline would have passed.
            time.sleep(0.6)
            sock.sendall(head + b"\r\n")
            reply = b""
            while b'"ok"' not in reply:
                piece = sock.recv(65536)
                assert piece, f"closed after {reply[:200]!r}"
                reply += piece
            assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_a_document_stored_before_the_id_checks_is_still_listed_and_deleted(
        settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    import sqlite3

    app = _app(settings, embedder)
    with TestClient(app) as client:
        added = client.post("/v1/documents", json={"documents": [
            {"id": "old-note.txt", "text": "The ferry timetable changed in spring."}]})
        assert added.status_code == 200, added.text
    # A data folder written by an earlier citeqa may hold an id that is refused today.
    with sqlite3.connect(settings.data_dir / "catalog.sqlite3") as db:
        for table in ("documents", "chunks", "sentences"):
            db.execute(f"UPDATE {table} SET doc_id = ? WHERE doc_id = ?",
                       ("old\x1bnote.txt", "old-note.txt"))
    with TestClient(_app(settings, embedder)) as client:
        listed = client.get("/v1/documents")
        assert listed.status_code == 200, listed.text
        assert [d["id"] for d in listed.json()["documents"]] == ["old\x1bnote.txt"]
        deleted = client.delete("/v1/documents/old%1Bnote.txt")
        assert deleted.status_code in (200, 204), deleted.text
        assert client.get("/v1/documents").json()["documents"] == []


def test_a_folder_ingest_skips_a_docx_whose_name_is_refused_and_goes_on(
        settings: Settings, tmp_path: Path) -> None:
    import docx

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "harbour.txt").write_text("The harbour reopened after the storm.",
                                        encoding="utf-8")
    word = docx.Document()
    word.add_paragraph("The lighthouse keeper retired after forty years.")
    word.save(str(folder / "keeper\x1b.docx"))
    result = CliRunner().invoke(cli.app, ["--data-dir", str(settings.data_dir), "ingest",
                                          str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "added 1" in result.stdout
    assert "keeper" in result.output and "control" in result.output.lower()


# A client that leaves (finding 5) -------------------------------------------------------------


class CountingChatModel(FakeListChatModel):
    """A slow scripted chat model that counts the characters it has been asked for."""

    pulled: int = 0

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in super()._stream(*args, **kwargs):
            self.pulled += 1
            yield chunk


def test_a_streamed_llm_answer_stops_when_its_client_leaves(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    generated = "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. " * 40
    model = CountingChatModel(responses=[generated], sleep=0.01)  # about 25 s in all
    settings = sample_settings.model_copy(update={"llm": "openai:fake"})
    app = create_app(settings, embedder=embedder)
    app.state.citeqa = Citeqa.build(settings, embedder=embedder, chat_model=model)
    with _uvicorn(app) as port:
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/ask/stream", timeout=60,
                          json={"question": "Who co-leads the lab?"}) as response:
            for line in response.iter_lines():
                if line.startswith("event: delta"):
                    break  # the reader leaves after the first words
        deadline = time.monotonic() + 10
        settled = -1
        while model.pulled != settled and time.monotonic() < deadline:
            settled = model.pulled
            time.sleep(0.5)  # the server notices within one read of the closed socket
        assert model.pulled == settled, "the model was still generating 10 s after the client left"
        assert settled < len(generated) // 2, f"{settled} of {len(generated)} characters generated"
