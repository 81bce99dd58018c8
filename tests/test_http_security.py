"""Cross-site requests, Host checks, page headers, keys that fail closed, what keys protect,
HEAD, and open servers (issue 13, findings 4, 7 and 8). In process or loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.errors import ConfigurationError
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server import cli
from server.app import create_app
from server.options import ServerOptions
from server.security import loopback_hosts, refuse_open_server

EVIL = "http://evil.example"
NOTE = b"The harbour bell of Varnholm rings at noon and at midnight.\n"


def upload(client: TestClient, name: str, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/documents", headers=headers or {},
                       files=[("file", (name, NOTE, "text/plain"))])


def doc_ids(client: TestClient) -> set[str]:
    response = client.get("/v1/documents")
    assert response.status_code == 200, response.text
    return {doc["id"] for doc in response.json()["documents"]}


def assert_refused(response: Any, status: int, code: str) -> None:
    """The same JSON error shape as every other citeqa error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == code
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


# Settings from the caller's environment that would change what these tests see.
NO_SECURITY_ENV: dict[str, str | None] = {
    name: None for name in ("CITEQA_API_KEYS", "CITEQA_API_KEYS_FILE", "CITEQA_ALLOW_OPEN",
                            "CITEQA_ALLOWED_HOSTS", "CITEQA_HOST", "CITEQA_PORT")}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`citeqa serve` runs up to uvicorn.run and no further; each call's app and options."""
    import uvicorn

    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **options: Any) -> None:
        calls.append({"app": app, **options})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return calls


@pytest.fixture
def keyed(sample_settings: Settings, embedder: SentenceTransformerEmbedder
          ) -> Iterator[TestClient]:
    """The API with one key configured."""
    settings = sample_settings.model_copy(update={"api_keys": "sesame-42"})
    with TestClient(create_app(settings, embedder=embedder)) as test_client:
        yield test_client


# Cross-site requests (finding 4) --------------------------------------------------------------


def test_a_cross_origin_upload_is_refused_and_stores_nothing(client: TestClient) -> None:
    before = doc_ids(client)
    refused = upload(client, "planted.txt", {"Origin": EVIL})
    assert_refused(refused, 403, "cross_origin_refused")
    assert doc_ids(client) == before


@pytest.mark.parametrize("origin", ["null", "http://testserver.evil.example",
                                    "http://testserver:8080", "https://127.0.0.1"])
def test_opaque_and_look_alike_origins_are_refused(client: TestClient, origin: str) -> None:
    assert_refused(upload(client, "planted.txt", {"Origin": origin}), 403,
                   "cross_origin_refused")


def test_every_state_changing_route_checks_the_origin(client: TestClient) -> None:
    foreign = {"Origin": EVIL}
    assert_refused(client.post("/v1/collections", json={"name": "planted"}, headers=foreign),
                   403, "cross_origin_refused")
    assert_refused(client.delete("/v1/collections/articles", headers=foreign), 403,
                   "cross_origin_refused")
    assert_refused(client.delete("/v1/documents/joint-ai-lab.md", headers=foreign), 403,
                   "cross_origin_refused")
    assert_refused(client.post("/v1/documents", json={"documents": [
        {"doc_id": "x", "text": "planted"}]}, headers=foreign), 403, "cross_origin_refused")
    assert "planted" not in {c["name"] for c in client.get("/v1/collections").json()[
        "collections"]}
    assert "joint-ai-lab.md" in doc_ids(client)


def test_same_origin_and_origin_less_uploads_still_work(client: TestClient) -> None:
    # TestClient talks to http://testserver: that is the server's own origin here.
    own = upload(client, "own.txt", {"Origin": "http://testserver"})
    assert own.status_code == 200, own.text
    plain = upload(client, "plain.txt")
    assert plain.status_code == 200, plain.text
    assert {"own.txt", "plain.txt"} <= doc_ids(client)
    # Reading is not state-changing: a foreign Origin on a GET is CORS's business, not ours.
    assert client.get("/v1/documents", headers={"Origin": EVIL}).status_code == 200


def test_origins_listed_for_cors_may_write(sample_settings: Settings,
                                           embedder: SentenceTransformerEmbedder) -> None:
    settings = sample_settings.model_copy(update={"cors_origins": "https://intranet.example"})
    with TestClient(create_app(settings, embedder=embedder)) as test_client:
        listed = upload(test_client, "intranet.txt", {"Origin": "https://intranet.example"})
        assert listed.status_code == 200, listed.text
        assert_refused(upload(test_client, "evil.txt", {"Origin": EVIL}), 403,
                       "cross_origin_refused")


# Host allow-list (finding 8) ------------------------------------------------------------------


def test_a_foreign_host_is_refused_when_hosts_are_listed(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    settings = sample_settings.model_copy(update={"allowed_hosts": loopback_hosts("127.0.0.1")})
    with TestClient(create_app(settings, embedder=embedder),
                    base_url="http://127.0.0.1:8000") as test_client:
        assert test_client.get("/healthz").status_code == 200
        for host in ("localhost:8000", "[::1]:8000", "LOCALHOST"):
            assert test_client.get("/healthz", headers={"Host": host}).status_code == 200
        for host in ("rebound.evil.example:8000", "evil.example", "127.0.0.1.evil.example"):
            assert_refused(test_client.get("/", headers={"Host": host}), 400, "host_not_allowed")
            assert_refused(upload(test_client, "x.txt", {"Host": host}), 400,
                           "host_not_allowed")


def test_serve_lists_the_loopback_names_when_bound_to_loopback() -> None:
    hosts = loopback_hosts("127.0.0.1").split(",")
    assert {"localhost", "127.0.0.1", "[::1]"} <= set(hosts)
    assert "127.0.0.2" in loopback_hosts("127.0.0.2").split(",")


# Page headers (finding 8) ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/healthz"])
def test_pages_carry_a_strict_csp_and_no_framing(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_refusals_carry_the_headers_too(client: TestClient) -> None:
    refused = upload(client, "planted.txt", {"Origin": EVIL})
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]


def test_the_page_has_no_inline_script_or_style() -> None:
    page = (Path(cli.__file__).parent.parent / "static" / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "<script " not in page.replace(
        '<script type="module" src="/static/app.js"></script>', "")
    assert "<style" not in page and " style=" not in page and "on" + "click=" not in page


# Keys fail closed (finding 7) -----------------------------------------------------------------


@pytest.mark.parametrize("value", [" , ", "", ",,", "   "])
def test_a_keys_variable_without_a_key_is_a_startup_error(settings: Settings,
                                                           value: str) -> None:
    broken = settings.model_copy(update={"api_keys": value})
    with pytest.raises(ConfigurationError) as raised:
        create_app(broken)
    assert raised.value.code == "no_api_keys"
    assert "CITEQA_API_KEYS" in raised.value.detail


@pytest.mark.parametrize("content", ["", "\n\n", "# the keys\n  # more comments\n"])
def test_a_keys_file_without_a_key_is_a_startup_error(settings: Settings, tmp_path: Path,
                                                      content: str) -> None:
    keys = tmp_path / "keys"
    keys.write_text(content, encoding="utf-8")
    broken = settings.model_copy(update={"api_keys_file": keys})
    with pytest.raises(ConfigurationError) as raised:
        create_app(broken)
    assert raised.value.code == "no_api_keys"
    assert str(keys) in raised.value.detail


def test_serve_says_what_to_fix_when_the_keys_are_empty(
        tmp_path: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli.app, ["--data-dir", str(tmp_path / "data"), "serve"],
                                env={"CITEQA_API_KEYS": " , "})
    assert result.exit_code == 1 and not served
    assert "CITEQA_API_KEYS" in result.output and "no_api_keys" in result.output


def test_valid_keys_still_work(settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# ops\nfile-key  # rotated in May\n", encoding="utf-8")
    both = settings.model_copy(update={"api_keys": " env-key , ", "api_keys_file": keys})
    assert both.allowed_api_keys() == ["env-key", "file-key"]
    assert settings.allowed_api_keys() == []


# What keys protect (finding 8) ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_metrics_and_docs_need_the_key_when_keys_are_set(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 401
    assert keyed.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert keyed.get(path, headers={"Authorization": "Bearer sesame-42"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_metrics_and_docs_stay_open_without_keys(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_the_docs_page_gets_a_csp_that_lets_it_load(client: TestClient) -> None:
    csp = client.get("/docs").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp


# HEAD (finding 8) -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/static/app.js",
                                  "/v1/documents"])
def test_head_is_answered_where_get_is(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_on_a_post_only_route_is_still_405(client: TestClient) -> None:
    assert client.head("/v1/ask").status_code == 405


# Open servers (finding 8) ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_serving_beyond_loopback_without_keys_is_refused(settings: Settings, host: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        refuse_open_server(host, ServerOptions.from_settings(settings))
    assert raised.value.code == "open_server"
    assert "--allow-open" in raised.value.detail and "CITEQA_API_KEYS" in raised.value.detail


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.5"])
def test_serving_on_loopback_without_keys_is_fine(settings: Settings, host: str) -> None:
    refuse_open_server(host, ServerOptions.from_settings(settings))


def test_keys_or_an_explicit_opt_in_allow_serving_beyond_loopback(settings: Settings) -> None:
    refuse_open_server("0.0.0.0", ServerOptions.from_settings(
        settings.model_copy(update={"api_keys": "k1"})))
    refuse_open_server("0.0.0.0", ServerOptions.from_settings(
        settings.model_copy(update={"allow_open": True})))


def test_serve_on_all_addresses_without_keys_exits_with_the_reason(
        tmp_path: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli.app, ["--data-dir", str(tmp_path / "data"), "serve",
                                          "--host", "0.0.0.0"], env=NO_SECURITY_ENV)
    assert result.exit_code == 1 and not served
    assert "open_server" in result.output and "--allow-open" in result.output


@pytest.mark.parametrize("opt_in", [["--allow-open"], []])
def test_serve_on_all_addresses_when_the_user_opts_in(
        tmp_path: Path, served: list[dict[str, Any]], opt_in: list[str]) -> None:
    env = {**NO_SECURITY_ENV, "CITEQA_ALLOW_OPEN": None if opt_in else "true"}
    result = CliRunner().invoke(cli.app, ["--data-dir", str(tmp_path / "data"), "serve",
                                          "--host", "0.0.0.0", *opt_in], env=env)
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in served] == ["0.0.0.0"]
    assert "without API keys" in result.output
    # Bound beyond loopback with no list of hosts: any Host is answered.
    app = served[0]["app"]
    assert TestClient(app).get("/", headers={"Host": "citeqa.example"}).status_code == 200


def test_serve_on_loopback_answers_only_loopback_names(
        tmp_path: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli.app, ["--data-dir", str(tmp_path / "data"), "serve"],
                                env=NO_SECURITY_ENV)
    assert result.exit_code == 0, result.output
    page = TestClient(served[0]["app"], base_url="http://127.0.0.1:8000")
    assert page.get("/").status_code == 200
    assert page.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert_refused(page.get("/", headers={"Host": "rebound.evil.example:8000"}), 400,
                   "host_not_allowed")
