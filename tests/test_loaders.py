"""PDF, DOCX and URL loaders: text and titles extracted, every failure a skip with a reason."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docx
import pypdf
import pytest

from core.documents import Document, SkippedSource
from index.fetch import fetch_failed, fetch_url, is_url
from index.loaders import load_bytes, load_sources

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

FERRY_PAGES = [
    ["Ferry Timetable Changes at Marrowby", "The winter crossing now leaves at 07:40."],
    ["Harbour master Ottilie Grahn said the pier repairs end in March."],
]


# --- building test files -------------------------------------------------------------------

def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def make_pdf(pages: list[list[str]], *, title: str | None = None,
             xref_shift: int = 0) -> bytes:
    """A minimal valid PDF whose pages show the given lines in Helvetica.

    `xref_shift` moves every xref offset, to make a damaged file that pypdf has to repair.
    """
    # Object numbers: 1 catalog, 2 page tree, 3 font, then a page and its content per page,
    # then the optional info dictionary.
    page_numbers = [4 + 2 * i for i in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % n for n in page_numbers)
        + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for number, lines in zip(page_numbers, pages, strict=True):
        shown = b" T* ".join(_pdf_string(line) + b" Tj" for line in lines)
        stream = b"BT /F1 12 Tf 16 TL 72 720 Td " + shown + b" ET" if lines else b""
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (number + 1))
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    trailer_extra = b""
    if title is not None:
        objects.append(b"<< /Title " + _pdf_string(title) + b" >>")
        trailer_extra = b" /Info %d 0 R" % len(objects)
    return pdf_bytes(objects, trailer_extra=trailer_extra, xref_shift=xref_shift)


def pdf_bytes(objects: list[bytes], *, trailer_extra: bytes = b"", xref_shift: int = 0
              ) -> bytes:
    """A PDF file of these numbered objects (1 is the catalog), with its xref and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    # Each xref entry is exactly 20 bytes: 10-digit offset, 5-digit generation, "n", EOL.
    out += b"".join(b"%010d 00000 n \n" % (offset + xref_shift) for offset in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R" % (len(objects) + 1) + trailer_extra
            + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at)
    return bytes(out)


def make_docx(*, title: str | None = None) -> bytes:
    """A Word file with a heading, two paragraphs and a 2x2 table in between."""
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    document.add_heading("Orchard Cooperative Annual Report", level=1)
    document.add_paragraph("Members pressed 1,200 litres of cider this autumn.")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("Variety", "Tonnes"), ("Russet", "14")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("The next tasting is on the first Sunday of May.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _one(name: str, data: bytes) -> Document | SkippedSource:
    [loaded] = list(load_bytes(name, data, doc_id=name))
    return loaded


# --- PDF -----------------------------------------------------------------------------------

def test_pdf_text_is_extracted_page_by_page_with_the_metadata_title() -> None:
    document = _one("ferry.pdf", make_pdf(FERRY_PAGES, title="Marrowby Ferry Notice"))
    assert isinstance(document, Document)
    assert document.title == "Marrowby Ferry Notice"
    first, second = document.text.split("\n\n")
    assert first == "Ferry Timetable Changes at Marrowby\nThe winter crossing now leaves at 07:40."
    assert second == FERRY_PAGES[1][0]


def test_pdf_without_a_metadata_title_uses_its_first_line() -> None:
    document = _one("ferry.pdf", make_pdf(FERRY_PAGES))
    assert isinstance(document, Document)
    assert document.title == "Ferry Timetable Changes at Marrowby"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\nthis is not really a pdf at all", "not a readable pdf"),
        (b"", "not a readable pdf"),
        (make_pdf([[]]), "no extractable text"),
    ],
    ids=["garbage", "empty-file", "image-only"],
)
def test_unreadable_pdfs_are_skipped_with_a_reason(data: bytes, reason: str) -> None:
    skipped = _one("bad.pdf", data)
    assert isinstance(skipped, SkippedSource)
    assert (skipped.name, skipped.doc_id) == ("bad.pdf", "bad.pdf")
    assert reason in skipped.reason.lower()


def test_password_protected_pdf_is_skipped() -> None:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(FERRY_PAGES))))
    writer.encrypt("open-sesame", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    skipped = _one("locked.pdf", buffer.getvalue())
    assert isinstance(skipped, SkippedSource)
    assert "password" in skipped.reason


def test_a_repaired_pdf_loads_without_pypdf_warnings(caplog: pytest.LogCaptureFixture) -> None:
    # Wrong xref offsets make pypdf rebuild the table and log warnings about it.
    data = make_pdf(FERRY_PAGES, xref_shift=3)
    level_before = logging.getLogger("pypdf").level
    with caplog.at_level(logging.WARNING):
        document = _one("ferry.pdf", data)
    assert isinstance(document, Document)
    assert "07:40" in document.text
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    # The loader gives the logger its level back afterwards.
    assert logging.getLogger("pypdf").level == level_before


# --- DOCX ----------------------------------------------------------------------------------

def test_docx_paragraphs_and_table_rows_in_document_order() -> None:
    document = _one("report.docx", make_docx())
    assert isinstance(document, Document)
    assert document.text == (
        "Orchard Cooperative Annual Report\n\n"
        "Members pressed 1,200 litres of cider this autumn.\n\n"
        "Variety | Tonnes\n\n"
        "Russet | 14\n\n"
        "The next tasting is on the first Sunday of May."
    )
    assert document.title == "Orchard Cooperative Annual Report"


def test_docx_title_property_wins_over_the_heading() -> None:
    document = _one("report.docx", make_docx(title="Cooperative Report 2025"))
    assert isinstance(document, Document)
    assert document.title == "Cooperative Report 2025"


@pytest.mark.parametrize("data", [b"PK\x03\x04 truncated zip", b"plain text, not a zip"],
                         ids=["truncated-zip", "not-a-zip"])
def test_broken_docx_is_skipped_with_a_reason(data: bytes) -> None:
    skipped = _one("broken.docx", data)
    assert isinstance(skipped, SkippedSource)
    assert "not a readable docx" in skipped.reason.lower()


def test_folders_pick_up_pdf_and_docx_files(tmp_path: Path) -> None:
    (tmp_path / "ferry.pdf").write_bytes(make_pdf(FERRY_PAGES))
    (tmp_path / "report.docx").write_bytes(make_docx())
    loaded = list(load_sources([tmp_path], max_bytes=10**6))
    assert sorted(d.id for d in loaded if isinstance(d, Document)) == ["ferry.pdf",
                                                                       "report.docx"]


# --- URLs ----------------------------------------------------------------------------------

@dataclass
class Reply:
    """What the test server answers for one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Reply]
    user_agents: list[str]

    def do_GET(self) -> None:
        self.user_agents.append(self.headers.get("User-Agent", ""))
        reply = self.routes.get(self.path, Reply(404, b"<html><body><p>Nothing here</p>"))
        time.sleep(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.send_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        # The client hangs up early in the size-limit and timeout tests.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@dataclass
class Site:
    """A loopback web server: add `routes`, fetch `url(path)`."""

    base: str
    routes: dict[str, Reply]
    user_agents: list[str]

    def url(self, path: str) -> str:
        """The full URL of a path on this server."""
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    """A real HTTP server on a free loopback port, serving the routes the test sets."""
    routes: dict[str, Reply] = {}
    user_agents: list[str] = []
    handler = type("Handler", (_Handler,), {"routes": routes, "user_agents": user_agents})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval, so shutting the server down does not add half a second per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", routes, user_agents)
    finally:
        server.shutdown()
        server.server_close()


HTML_PAGE = b"""<!doctype html><html><head><meta charset="utf-8">
<title>Night Trains Return to the Coast</title>
<meta property="og:title" content="Night trains return (social)"></head>
<body><nav><a href="/">Home</a> | <a href="/travel">Travel</a></nav>
<div class="promo"><p>Subscribe to our newsletter today!</p></div>
<article><h1>Night Trains Return</h1>
<p>The sleeper service to Port Elmsby restarts on 3 November.</p>
<p>Cabins sleep up to four passengers.</p></article>
<footer>Copyright Coastline Gazette</footer></body></html>"""


def test_fetched_html_page_keeps_only_the_article(site: Site) -> None:
    site.routes["/news/trains"] = Reply(body=HTML_PAGE,
                                        headers={"Content-Type": "text/html; charset=utf-8"})
    url = site.url("/news/trains")
    document = fetch_url(url, timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert (document.id, document.url) == (url, url)
    assert document.title == "Night Trains Return to the Coast"
    assert document.text == (
        "Night Trains Return\n\n"
        "The sleeper service to Port Elmsby restarts on 3 November.\n\n"
        "Cabins sleep up to four passengers."
    )
    assert site.user_agents == ["citeqa/0.1"]


def test_og_title_is_used_when_the_page_has_no_title_tag(site: Site) -> None:
    page = HTML_PAGE.replace(b"<title>Night Trains Return to the Coast</title>", b"")
    site.routes["/p"] = Reply(body=page, headers={"Content-Type": "text/html"})
    document = fetch_url(site.url("/p"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert document.title == "Night trains return (social)"


def test_redirects_are_followed_and_the_final_url_kept(site: Site) -> None:
    site.routes["/old"] = Reply(301, headers={"Location": "/news/trains"})
    site.routes["/news/trains"] = Reply(body=HTML_PAGE, headers={"Content-Type": "text/html"})
    document = fetch_url(site.url("/old"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    # The id stays what was asked for, so a second fetch replaces the first.
    assert document.id == site.url("/old")
    assert document.url == site.url("/news/trains")


def test_http_errors_are_skipped_with_the_status(site: Site) -> None:
    site.routes["/broken"] = Reply(500, b"oops", {"Content-Type": "text/plain"})
    missing = fetch_url(site.url("/missing"), timeout=5, max_bytes=10**6, allow_private=True)
    broken = fetch_url(site.url("/broken"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(missing, SkippedSource) and isinstance(broken, SkippedSource)
    # No status in the reason: one message for every failure, so no port oracle (issue 13).
    assert missing.reason == fetch_failed(site.url("/missing"))
    assert broken.reason == fetch_failed(site.url("/broken"))
    assert (missing.name, missing.doc_id) == (site.url("/missing"), site.url("/missing"))


@pytest.mark.parametrize("send_length", [True, False], ids=["declared", "streamed"])
def test_bodies_over_the_limit_are_refused(site: Site, send_length: bool) -> None:
    site.routes["/big"] = Reply(body=b"<p>" + b"x" * 50_000 + b"</p>",
                                headers={"Content-Type": "text/html"}, send_length=send_length)
    skipped = fetch_url(site.url("/big"), timeout=5, max_bytes=10_000, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert "10,000-byte limit" in skipped.reason


def test_pdf_served_over_http_is_loaded(site: Site) -> None:
    site.routes["/files/notice"] = Reply(body=make_pdf(FERRY_PAGES, title="Ferry Notice"),
                                         headers={"Content-Type": "application/pdf"})
    document = fetch_url(site.url("/files/notice"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert document.title == "Ferry Notice"
    assert "Ottilie Grahn" in document.text
    assert document.url == site.url("/files/notice")


def test_docx_served_as_octet_stream_is_recognised_by_its_suffix(site: Site) -> None:
    site.routes["/report.docx"] = Reply(body=make_docx(),
                                        headers={"Content-Type": "application/octet-stream"})
    document = fetch_url(site.url("/report.docx"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert "Russet | 14" in document.text


def test_declared_charset_is_decoded(site: Site) -> None:
    body = "<html><title>Caf\u00e9 notes</title><p>Cr\u00e8me br\u00fbl\u00e9e.</p>"
    site.routes["/latin"] = Reply(body=body.encode("latin-1"),
                                  headers={"Content-Type": "text/html; charset=iso-8859-1"})
    document = fetch_url(site.url("/latin"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(document, Document)
    assert document.text == "Cr\u00e8me br\u00fbl\u00e9e."


def test_unsupported_content_type_is_skipped(site: Site) -> None:
    site.routes["/logo"] = Reply(body=b"\x89PNG....", headers={"Content-Type": "image/png"})
    skipped = fetch_url(site.url("/logo"), timeout=5, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert "image/png" in skipped.reason


def test_slow_server_times_out(site: Site) -> None:
    site.routes["/slow"] = Reply(body=b"<p>late</p>", headers={"Content-Type": "text/html"},
                                 delay=1.0)
    skipped = fetch_url(site.url("/slow"), timeout=0.2, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert skipped.reason == fetch_failed(site.url("/slow"))


def test_refused_connection_is_skipped() -> None:
    # A port that was just free and has nobody listening on it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    skipped = fetch_url(f"http://127.0.0.1:{port}/", timeout=2, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert skipped.reason == fetch_failed(f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize("url", ["ftp://files.example/report.pdf", "file:///etc/hostname",
                                 "javascript:alert(1)", "example.org/page"])
def test_only_http_and_https_urls_are_fetched(url: str) -> None:
    skipped = fetch_url(url, timeout=2, max_bytes=10**6, allow_private=True)
    assert isinstance(skipped, SkippedSource)
    assert "only http:// and https://" in skipped.reason


def test_is_url_tells_urls_from_paths() -> None:
    assert is_url("https://example.org/a?b=1")
    assert is_url("http://127.0.0.1:8000/")
    assert is_url("ftp://files.example/x")  # so fetch_url can refuse it clearly
    assert not is_url("articles/report.pdf")
    assert not is_url("/home/me/notes.md")
    assert not is_url("C:\\Users\\me\\notes.txt")
    assert not is_url("https://example.org/a b")
