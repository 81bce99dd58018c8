"""Hostile URLs and folders (issue 13): SSRF, redirects, DNS rebinding, credentials, the port
oracle, script URLs, and symlinks out of an ingested folder.

Everything here talks to loopback only. Where a test needs a *public* host, the resolver in
`index.fetch` is replaced so a made-up name resolves to a documentation address, and the
network below httpx is an `httpx.MockTransport`: the address checks under test are the real
ones, only the far side of the wire is simulated.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.documents import Document, SkippedSource
from index import fetch
from index.fetch import fetch_url
from index.loaders import load_sources

PAGE = (b"<html><head><title>Tide Tables for Skellan Harbour</title></head><body><article>"
        b"<p>High water at Skellan Harbour falls at 06:40 on Saturday.</p></article></body>"
        b"</html>")
# A public address (example.com's). It is never dialled: every test using it runs over a
# MockTransport. (The documentation ranges such as 203.0.113.0/24 will not do: Python counts
# them as private, so the fetcher rightly refuses them.)
PUBLIC_IP = "93.184.215.14"
INTERNAL = "inside the network"


@dataclass
class Answer:
    """What the loopback server sends for one path."""

    status: int = 200
    body: bytes = PAGE
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})
    delay: float = 0.0


@dataclass
class Server:
    """A loopback HTTP server that records every request it gets."""

    port: int
    answers: dict[str, Answer]
    seen: list[tuple[str, dict[str, str]]]

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """The URL of `path` on this server, with the host spelled as given."""
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    """A real HTTP server on a free 127.0.0.1 port."""
    answers: dict[str, Answer] = {}
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, dict(self.headers)))
            answer = answers.get(self.path, Answer(404, b"not here"))
            time.sleep(answer.delay)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], answers, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Resolve the given made-up names to the given addresses; other names resolve as usual.

    Returns the list of names looked up, in order, so tests can count resolutions.
    """
    real = fetch._lookup
    asked: list[str] = []

    def lookup(host: str, port: int) -> list[str]:
        asked.append(host)
        if host in names:
            if not names[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return list(names[host])
        return real(host, port)

    monkeypatch.setattr(fetch, "_lookup", lookup)
    return asked


def fake_network(monkeypatch: pytest.MonkeyPatch,
                 answer: Callable[[httpx.Request], httpx.Response]) -> list[httpx.Request]:
    """Send every request of the fetcher to `answer` instead of the network; the requests."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return answer(request)

    monkeypatch.setattr(fetch, "_transport", lambda: httpx.MockTransport(handler))
    return requests


def redirect_to(location: str) -> Callable[[httpx.Request], httpx.Response]:
    """A far side that answers every request with a redirect to `location`."""
    return lambda request: httpx.Response(302, headers={"Location": location})


# -- 1. internal addresses, in every spelling ------------------------------------------------

SPELLINGS = ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "127.1", "0.0.0.0",
             "[::1]", "[::ffff:127.0.0.1]", "LOCALHOST", "127.000.000.001", "[::]"]


@pytest.mark.parametrize("host", SPELLINGS)
def test_loopback_in_every_spelling_is_refused_before_connecting(server: Server,
                                                                 host: str) -> None:
    server.answers["/"] = Answer()
    url = server.url("/", host=host)
    skipped = fetch_url(url, timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource), f"{url} was fetched"
    if host == "127.000.000.001":
        # httpx's URL parser rejects zero-padded octets before any lookup: refused anyway.
        assert "not a valid URL" in skipped.reason
    else:
        assert INTERNAL in skipped.reason
        assert "CITEQA_FETCH_ALLOW_PRIVATE=true" in skipped.reason
    assert server.seen == []


@pytest.mark.parametrize("address", [
    "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.251",
    "240.0.0.1", "255.255.255.255", "fd00::1", "fe80::1", "ff02::1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1",
])
def test_names_resolving_to_internal_addresses_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                           address: str) -> None:
    fake_dns(monkeypatch, {"intranet.example": [address]})
    requests = fake_network(monkeypatch, lambda request: httpx.Response(200, content=PAGE))
    skipped = fetch_url("http://intranet.example/wiki", timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource), address
    assert INTERNAL in skipped.reason
    assert requests == []


def test_a_name_with_one_internal_address_among_public_ones_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.example": [PUBLIC_IP, "127.0.0.1"]})
    requests = fake_network(monkeypatch, lambda request: httpx.Response(200, content=PAGE))
    skipped = fetch_url("http://mixed.example/", timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource) and INTERNAL in skipped.reason
    assert requests == []


def test_allow_private_lets_loopback_through(server: Server) -> None:
    server.answers["/tides"] = Answer()
    document = fetch_url(server.url("/tides", host="localhost"), timeout=3, max_bytes=10**6,
                         allow_private=True)
    assert isinstance(document, Document)
    assert "06:40" in document.text
    # The citation link is the URL as the user spelled it, not the address connected to.
    assert document.url == server.url("/tides", host="localhost")
    assert server.seen[0][1]["Host"] == f"localhost:{server.port}"


# -- redirects and DNS rebinding -------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "http://127.0.0.1:8000/admin", "http://2130706433/", "http://0x7f000001:8080/",
    "http://127.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://localhost/",
    "http://169.254.169.254/latest/meta-data/", "http://rebound.example/",
])
def test_a_redirect_to_an_internal_address_is_refused_on_that_hop(
        monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    fake_dns(monkeypatch, {"news.example": [PUBLIC_IP], "rebound.example": ["10.0.0.8"]})
    requests = fake_network(monkeypatch, redirect_to(target))
    skipped = fetch_url("http://news.example/story", timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource)
    assert INTERNAL in skipped.reason
    # One request, to the public address; the internal one was never dialled.
    assert [str(r.url) for r in requests] == [f"http://{PUBLIC_IP}/story"]


def test_the_checked_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: the first answer is public, every later one is loopback.
    answers = iter([[PUBLIC_IP]])
    real = fetch._lookup

    def rebinding(host: str, port: int) -> list[str]:
        if host == "rebind.example":
            return next(answers, ["127.0.0.1"])
        return real(host, port)

    monkeypatch.setattr(fetch, "_lookup", rebinding)
    requests = fake_network(monkeypatch, lambda request: httpx.Response(
        200, content=PAGE, headers={"Content-Type": "text/html"}))
    document = fetch_url("https://rebind.example:8443/tides?day=sat", timeout=3,
                         max_bytes=10**6)
    assert isinstance(document, Document)
    (request,) = requests
    assert str(request.url) == f"https://{PUBLIC_IP}:8443/tides?day=sat"
    assert request.headers["Host"] == "rebind.example:8443"
    # TLS is negotiated, and the certificate checked, for the name, not the address.
    assert request.extensions["sni_hostname"] == "rebind.example"
    assert document.url == "https://rebind.example:8443/tides?day=sat"


@pytest.fixture
def tls_server(tmp_path: Path, server: Server) -> Iterator[tuple[int, ssl.SSLContext]]:
    """The loopback server's pages over HTTPS, with a certificate for `tls.example` only.

    Yields the port and a client context trusting that certificate.
    """
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=tls.example", "-addext", "subjectAltName=DNS:tls.example",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # Relay TLS on a second port to the plain server: one handler, two ways in.
    def relay(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls, \
                socket.create_connection(("127.0.0.1", server.port)) as upstream:
            tls.settimeout(2)
            upstream.sendall(tls.recv(65536))  # a GET from the fetcher fits in one read
            while data := upstream.recv(65536):
                tls.sendall(data)

    def in_thread(conn: socket.socket) -> None:
        threading.Thread(target=relay, args=(conn,), daemon=True).start()

    with _loopback_listener(in_thread) as port:
        yield port, ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize(("name", "works"), [("tls.example", True), ("other.example", False)])
def test_https_goes_to_the_checked_address_and_checks_the_certificate_for_the_name(
        monkeypatch: pytest.MonkeyPatch, server: Server,
        tls_server: tuple[int, ssl.SSLContext], name: str, works: bool) -> None:
    port, trust = tls_server
    server.answers["/tides"] = Answer()
    fake_dns(monkeypatch, {name: ["127.0.0.1"]})
    monkeypatch.setattr(fetch, "_transport", lambda: httpx.HTTPTransport(
        verify=trust, trust_env=False, retries=0))
    url = f"https://{name}:{port}/tides"
    loaded = fetch_url(url, timeout=5, max_bytes=10**6, allow_private=True)
    if works:
        assert isinstance(loaded, Document), loaded
        assert loaded.url == url and "06:40" in loaded.text
        assert server.seen[-1][1]["Host"] == f"{name}:{port}"
    else:
        # The certificate names tls.example, not other.example: refused, as any failure.
        assert isinstance(loaded, SkippedSource)
        assert loaded.reason == fetch.fetch_failed(url)


def test_redirects_are_bounded(server: Server) -> None:
    server.answers["/loop"] = Answer(302, b"", {"Location": "/loop"})
    skipped = fetch_url(server.url("/loop"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert len(server.seen) == fetch.MAX_REDIRECTS + 1


def test_an_allowed_redirect_is_followed_and_keeps_the_final_url(server: Server) -> None:
    server.answers["/old"] = Answer(301, b"", {"Location": "/new"})
    server.answers["/new"] = Answer()
    document = fetch_url(server.url("/old"), timeout=3, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert (document.id, document.url) == (server.url("/old"), server.url("/new"))


# -- 2. credentials in URLs ------------------------------------------------------------------

def test_credentials_in_a_url_are_refused_and_never_sent(server: Server) -> None:
    server.answers["/private"] = Answer()
    url = f"http://reader:s3cret-pw@127.0.0.1:{server.port}/private"
    skipped = fetch_url(url, timeout=3, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert "user name or password" in skipped.reason
    assert server.seen == []
    # Nor kept: not in the reason, the name shown, or the id.
    assert "s3cret-pw" not in f"{skipped.reason} {skipped.name} {skipped.doc_id}"


def test_credentials_in_a_redirect_are_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"news.example": [PUBLIC_IP], "other.example": [PUBLIC_IP]})
    requests = fake_network(monkeypatch, redirect_to("http://admin:hunter2@other.example/"))
    skipped = fetch_url("http://news.example/", timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource)
    assert len(requests) == 1 and "Authorization" not in requests[0].headers
    assert "hunter2" not in skipped.reason


# -- 3. one error for every failure: no port oracle ------------------------------------------

def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _loopback_listener(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback port whose connections go to `handle`, in a thread; stopped afterwards."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@contextlib.contextmanager
def _not_http_port() -> Iterator[int]:
    """A loopback port that accepts connections and answers with something that is not HTTP."""
    def banner(conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    with _loopback_listener(banner) as port:
        yield port


def test_every_fetch_failure_gives_the_same_message(server: Server,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server.answers["/"] = Answer(500, b"oops")
    server.answers["/slow"] = Answer(delay=1.0)
    fake_dns(monkeypatch, {"nowhere.example": []})
    with _not_http_port() as other:
        urls = {
            "closed port": f"http://127.0.0.1:{_closed_port()}/",
            "HTTP 500": server.url("/"),
            "HTTP 404": server.url("/missing"),
            "timeout": server.url("/slow"),
            "not HTTP": f"http://127.0.0.1:{other}/",
            "no such name": "http://nowhere.example/",
        }
        reasons = {}
        for kind, url in urls.items():
            skipped = fetch_url(url, timeout=0.3, max_bytes=10**6, allow_private=True)
            assert isinstance(skipped, SkippedSource), kind
            reasons[kind] = skipped.reason.replace(url, "<url>")
    assert len(set(reasons.values())) == 1, reasons
    message = reasons["closed port"]
    for telling in ("500", "404", "refused", "timed out", "0.3"):
        assert telling not in message


# -- 4. script and data URLs -----------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "javascript:alert(document.cookie)", "JavaScript://example.org/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>", "data:text/plain;base64,aGk=",
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO",
])
def test_non_http_urls_are_refused(url: str) -> None:
    skipped = fetch_url(url, timeout=3, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert "only http:// and https://" in skipped.reason


@pytest.mark.parametrize("target", ["javascript:alert(1)", "data:text/html,<p>hi</p>",
                                    "file:///etc/passwd"])
def test_a_redirect_to_a_non_http_url_is_not_followed_or_stored(
        monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    fake_dns(monkeypatch, {"news.example": [PUBLIC_IP]})
    requests = fake_network(monkeypatch, redirect_to(target))
    skipped = fetch_url("http://news.example/", timeout=3, max_bytes=10**6)
    assert isinstance(skipped, SkippedSource)
    assert len(requests) == 1


# -- through the API ------------------------------------------------------------------------

def test_the_api_refuses_a_loopback_url_and_stores_nothing(client: TestClient,
                                                           server: Server) -> None:
    server.answers["/"] = Answer()
    before = client.get("/v1/documents").json()["documents"]
    url = server.url("/")
    response = client.post("/v1/documents", json={"url": url})
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body["error"] == "unreadable_file"
    assert INTERNAL in body["detail"] and "CITEQA_FETCH_ALLOW_PRIVATE" in body["detail"]
    assert server.seen == []
    assert client.get("/v1/documents").json()["documents"] == before
    assert client.get(f"/v1/documents/{url}").status_code == 404


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>",
                                 "javascript://example.org/%0aalert(1)"])
def test_the_api_refuses_script_urls_and_stores_nothing(client: TestClient, url: str) -> None:
    before = client.get("/v1/documents").json()["documents"]
    response = client.post("/v1/documents", json={"url": url})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in {"invalid_url", "unreadable_file"}
    assert client.get("/v1/documents").json()["documents"] == before


# -- 5. symlinks out of an ingested folder ---------------------------------------------------

def test_ingest_dir_skips_file_symlinks_that_leave_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is 4417.\n", encoding="utf-8")
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "tides.md").write_text("# Tides\n\nHigh water falls at 06:40.\n",
                                     encoding="utf-8")
    (folder / "escape.txt").symlink_to(outside / "secret.txt")
    (folder / "sub" / "relative-escape.txt").symlink_to(Path("..", "..", "outside",
                                                             "secret.txt"))
    (folder / "sub" / "alias.md").symlink_to(Path("..", "tides.md"))  # stays inside: fine
    (folder / "dangling.txt").symlink_to(tmp_path / "gone.txt")

    loaded = list(load_sources([folder], max_bytes=10**6))
    documents = {item.id: item for item in loaded if isinstance(item, Document)}
    skipped = {item.doc_id: item for item in loaded if isinstance(item, SkippedSource)}
    assert sorted(documents) == ["sub/alias.md", "tides.md"]
    assert all("4417" not in d.text for d in documents.values())
    assert {"escape.txt", "sub/relative-escape.txt"} <= set(skipped)
    for name in ("escape.txt", "sub/relative-escape.txt"):
        assert "symlink" in skipped[name].reason and "outside" in skipped[name].reason
