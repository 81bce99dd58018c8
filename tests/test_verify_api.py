"""`POST /v1/verify` and `POST /v1/verify/stream`: any text checked over HTTP, with the real
model and a real Chroma over a private copy of the sample articles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import LAB_DOC
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_verify import CountingEmbedder

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app

pytestmark = pytest.mark.slow

CHATBOT_ANSWER = (
    "Great question! The Northgate-Corvalis AI Lab will open in March 2026 in Rotterdam. "
    "About 60 researchers will work at the lab. "
    "The city also plans a cable car over the harbour.")
SUPPORTED = "About 60 researchers will work at the lab."
ROUTES = ("/v1/verify", "/v1/verify/stream")


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of a response body, as (name, data) pairs."""
    found = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


def assert_error(response: Any, status: int, code: str) -> str:
    """Refused as plain JSON `{"error", "detail"}` (never a stream begun); the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def verify(client: TestClient, text: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/verify", json={"text": text, "collection": "articles", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_chatbot_answer_is_checked_sentence_by_sentence(client: TestClient) -> None:
    result = verify(client, CHATBOT_ANSWER)
    assert [s["verdict"] for s in result["sentences"]] == [
        "not_checkable", "contradicted", "supported", "unsupported"]
    assert result["counts"] == {"supported": 1, "contradicted": 1, "unsupported": 1,
                                "not_checkable": 1}
    assert result["collection"] == "articles"
    for sentence in result["sentences"]:
        assert CHATBOT_ANSWER[sentence["start"]:sentence["end"]] == sentence["text"]
    contradicted = result["sentences"][1]
    assert "September" in contradicted["reason"]
    # Every quote is the exact span of the document the page's viewer opens.
    for sentence in result["sentences"][1:3]:
        [evidence] = sentence["evidence"]
        assert evidence["doc_id"] == LAB_DOC
        text = client.get(f"/v1/documents/{LAB_DOC}").json()["text"]
        assert text[evidence["start"]:evidence["end"]] == evidence["quote"]


def test_the_stream_sends_each_sentence_then_the_counts(client: TestClient) -> None:
    whole = verify(client, CHATBOT_ANSWER)
    response = client.post("/v1/verify/stream",
                           json={"text": CHATBOT_ANSWER, "collection": "articles"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    streamed = events(response.text)
    assert [name for name, _ in streamed] == ["sentence"] * 4 + ["done"]
    assert [data for _, data in streamed[:-1]] == whole["sentences"]
    assert streamed[-1][1] == {"counts": whole["counts"], "collection": "articles",
                               "as_of": whole["as_of"]}


def _drive(app: FastAPI, body: dict[str, Any], *,
           on_first_sentence: Callable[[], None] = lambda: None,
           leave: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """POST `body` to the streamed route at the ASGI level, as uvicorn serves it, calling
    `on_first_sentence` between the first sentence's event and the next: what a client reading
    the first verdict sees happen while the rest of the text is still being checked. With
    `leave`, the client disconnects once the first verdict reaches it."""
    payload = json.dumps(body).encode()
    chunks: list[bytes] = []
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/verify/stream", "raw_path": b"/v1/verify/stream",
             "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(payload)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}

    async def run() -> None:
        requested = False
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await gone.wait()  # set only when the client leaves
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200
            elif message["type"] == "http.response.body" and message["body"]:
                chunks.append(message["body"])
                if len(chunks) == 1:
                    on_first_sentence()
                    if leave:
                        gone.set()

        await app(scope, receive, send)

    asyncio.run(run())
    return events(b"".join(chunks).decode())


def test_a_long_text_streams_each_verdict_as_it_is_checked(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    app = create_app(sample_settings, embedder=embedder)
    app.state.citeqa = citeqa = Citeqa.build(sample_settings, embedder=embedder)
    # 300 sentences, each restating the lab article.
    text = f"{SUPPORTED} " * 300
    streamed = _drive(app, {"text": text, "collection": "articles"},
                      # The article goes while the client reads the first verdict.
                      on_first_sentence=lambda: citeqa.delete(LAB_DOC, "articles"))
    sentences = [data for name, data in streamed if name == "sentence"]
    assert len(sentences) == 300
    # The first verdict was sent before the rest were checked: they no longer find it.
    assert sentences[0]["verdict"] == "supported"
    assert sentences[0]["evidence"][0]["doc_id"] == LAB_DOC
    assert all(s["verdict"] != "supported" for s in sentences[1:])
    assert all(e["doc_id"] != LAB_DOC for s in sentences[1:] for e in s["evidence"])
    assert streamed[-1][0] == "done"
    assert streamed[-1][1]["counts"]["supported"] == 1


def test_a_client_that_leaves_stops_the_check(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    counting = CountingEmbedder(embedder)
    app = create_app(sample_settings, embedder=counting)
    app.state.citeqa = Citeqa.build(sample_settings, embedder=counting)
    before = counting.embedded

    # 3,000 sentences; the client leaves as the first verdict reaches it.
    streamed = _drive(app, {"text": f"{SUPPORTED} " * 3_000, "collection": "articles"},
                      leave=True)
    assert streamed and len(streamed) < 100 and streamed[-1][0] == "sentence"
    # Only the first block of sentences was embedded: nothing more is checked for nobody.
    assert 1 <= counting.embedded - before < 100


def test_a_failure_mid_stream_ends_it_with_an_error_event(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    app = create_app(sample_settings, embedder=embedder)
    app.state.citeqa = citeqa = Citeqa.build(sample_settings, embedder=embedder)
    streamed = _drive(app, {"text": f"{SUPPORTED} " * 100, "collection": "articles"},
                      on_first_sentence=lambda: citeqa.delete_collection("articles"))
    names = [name for name, _ in streamed]
    assert names[0] == "sentence" and names[-1] == "error" and "done" not in names
    error = streamed[-1][1]
    assert set(error) == {"error", "detail"} and error["detail"]


def test_the_most_sentences_allowed_stream_to_the_end(client: TestClient) -> None:
    # 5,000 sentences, the limit: mostly questions (not checkable), a fact every 250.
    sentences = ["Is that so?"] * 5_000
    for n in range(0, 5_000, 250):
        sentences[n] = SUPPORTED
    response = client.post("/v1/verify/stream",
                           json={"text": " ".join(sentences), "collection": "articles"})
    assert response.status_code == 200, response.text
    streamed = events(response.text)
    assert len(streamed) == 5_001
    assert streamed[-1] == ("done", {
        "counts": {"supported": 20, "contradicted": 0, "unsupported": 0,
                   "not_checkable": 4_980},
        "collection": "articles", "as_of": streamed[-1][1]["as_of"]})


@pytest.mark.parametrize("route", ROUTES)
def test_one_sentence_over_the_limit_is_refused_naming_it(client: TestClient,
                                                          route: str) -> None:
    text = "Is that so? " * 5_001
    detail = assert_error(client.post(route, json={"text": text}), 413, "too_many_sentences")
    assert "5,001" in detail and "CITEQA_MAX_VERIFY_SENTENCES" in detail


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("text", "status", "code", "named"), [
    ("", 400, "empty_text", "empty"),
    (" \n\t  ", 400, "empty_text", "empty"),
    ("%PDF-1.7\x00\x01\x02\x03 stream", 400, "binary_text", "binary"),
    ("x" * 1_000_001, 413, "text_too_long", "CITEQA_MAX_VERIFY_CHARS"),
])
def test_texts_that_cannot_be_checked_are_refused_before_any_stream(
        client: TestClient, route: str, text: str, status: int, code: str,
        named: str) -> None:
    detail = assert_error(client.post(route, json={"text": text}), status, code)
    assert named in detail


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_requests_say_what_is_wrong(client: TestClient, route: str) -> None:
    assert "text" in assert_error(client.post(route, json={}), 422, "invalid_request")
    assert "text" in assert_error(client.post(route, json={"text": 42}), 422,
                                  "invalid_request")
    assert "as_of" in assert_error(client.post(route, json={"text": SUPPORTED,
                                                            "as_of": "May 2"}),
                                   422, "invalid_request")
    assert_error(client.post(route, content=SUPPORTED.encode(),
                             headers={"Content-Type": "text/plain"}),
                 415, "unsupported_media_type")


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_collection_is_404(client: TestClient, route: str) -> None:
    detail = assert_error(client.post(route, json={"text": SUPPORTED, "collection": "nowhere"}),
                          404, "collection_not_found")
    assert "nowhere" in detail


def test_filters_limit_the_evidence(client: TestClient) -> None:
    assert verify(client, SUPPORTED)["sentences"][0]["verdict"] == "supported"
    elsewhere = verify(client, SUPPORTED, filters={"doc_ids": ["deep-sea-shrimp.md"]})
    [sentence] = elsewhere["sentences"]
    assert sentence["verdict"] == "unsupported"
    assert all(e["doc_id"] == "deep-sea-shrimp.md" for e in sentence["evidence"])


def test_as_of_leaves_out_later_articles_in_both_routes(client: TestClient) -> None:
    claim = "The Bank of Esterland cut its main interest rate to 3.50 percent."
    assert verify(client, claim)["sentences"][0]["verdict"] == "supported"
    before = verify(client, claim, as_of="2026-01-01")
    assert before["as_of"] == "2026-01-01"
    assert before["sentences"][0]["verdict"] == "unsupported"
    response = client.post("/v1/verify/stream", json={
        "text": claim, "collection": "articles", "as_of": "2026-01-01"})
    streamed = events(response.text)
    assert streamed[0][1]["verdict"] == "unsupported"
    assert streamed[-1][1]["as_of"] == "2026-01-01"


def test_limits_name_the_verify_limits_the_server_enforces(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    settings = sample_settings.model_copy(update={"max_verify_sentences": 3,
                                                  "max_verify_chars": 500})
    with TestClient(create_app(settings, embedder=embedder)) as client:
        limits = client.get("/v1/limits").json()
        assert limits["max_verify_sentences"] == 3
        assert limits["max_verify_chars"] == 500
        assert_error(client.post("/v1/verify", json={"text": "Is it? " * 4}), 413,
                     "too_many_sentences")
        assert_error(client.post("/v1/verify", json={"text": "x" * 501}), 413,
                     "text_too_long")
        assert client.post("/v1/verify", json={"text": "Is it? " * 3}).status_code == 200


@pytest.mark.parametrize("route", ROUTES)
def test_keys_and_the_origin_check_guard_the_verify_routes(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder, route: str) -> None:
    settings = sample_settings.model_copy(update={"api_keys": "sesame-42"})
    with TestClient(create_app(settings, embedder=embedder)) as client:
        body = {"text": SUPPORTED, "collection": "articles"}
        assert client.post(route, json=body).status_code == 401
        assert client.post(route, json=body, headers={
            "Authorization": "Bearer wrong"}).status_code == 401
        key = {"Authorization": "Bearer sesame-42"}
        assert_error(client.post(route, json=body, headers={**key,
                                                            "Origin": "http://evil.example"}),
                     403, "cross_origin_refused")
        allowed = client.post(route, json=body, headers=key)
        assert allowed.status_code == 200, allowed.text
        assert "supported" in allowed.text
