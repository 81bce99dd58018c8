"""Hostile PDF, DOCX and HTML files are refused within limits, off the event loop (issue 13,
finding 2): a small upload must not freeze the server or fill its memory."""

from __future__ import annotations

import io
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from core.documents import Document, SkippedSource
from core.settings import Settings
from index import loaders, parsing
from index.embedding import Embedder
from index.loaders import common as loaders_common
from index.loaders import docx as loaders_docx
from index.loaders import load_bytes
from index.loaders import pdf as loaders_pdf
from server.app import create_app
from tests.conftest import _free_port
from tests.test_loaders import pdf_bytes


def shared_stream_pdf(pages: int, inflated_bytes: int) -> bytes:
    """A tiny PDF whose `pages` pages all draw one Flate stream of about `inflated_bytes`."""
    unit = b"BT /F1 12 Tf 72 720 Td (a) Tj ET\n"
    packed = zlib.compress(unit * (inflated_bytes // len(unit)), 9)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed
        + b"\nendstream",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"] * pages
    return pdf_bytes(objects)


def empty_paragraphs_docx(paragraphs: int) -> bytes:
    """A .docx whose body is `paragraphs` empty `<w:p/>`: tens of kB packed."""
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    rel_ns = "http://schemas.openxmlformats.org/package/2006/relationships"
    office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
            '.org/package/2006/content-types"><Default Extension="rels" ContentType="application'
            '/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
            'document.main+xml"/></Types>'))
        archive.writestr("_rels/.rels", (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{rel_ns}">'
            f'<Relationship Id="rId1" Type="{office}" Target="word/document.xml"/>'
            '</Relationships>'))
        archive.writestr("word/document.xml", (
            f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{ns}"><w:body>'
            + "<w:p/>" * paragraphs
            + "<w:p><w:r><w:t>The end.</w:t></w:r></w:p></w:body></w:document>"))
    return buffer.getvalue()


def _one(name: str, data: bytes) -> Document | SkippedSource:
    [loaded] = list(load_bytes(name, data, doc_id=name))
    return loaded


# --- PDF -----------------------------------------------------------------------------------

def test_pdf_whose_pages_share_a_70_mb_stream_is_refused_quickly() -> None:
    data = shared_stream_pdf(6, 70_000_000)
    assert len(data) < 300_000
    started = time.monotonic()
    skipped = _one("bomb.pdf", data)
    assert time.monotonic() - started < 10
    assert isinstance(skipped, SkippedSource)
    assert f"more than {loaders.MAX_PDF_STREAM_BYTES:,} bytes" in skipped.reason


def test_pdf_pages_sharing_a_stream_count_once_per_page(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    # Each stream is under the per-stream cap, but pypdf would parse it once per page.
    monkeypatch.setattr(loaders_pdf, "MAX_PDF_CONTENT_BYTES", 1_200_000)
    skipped = loaders.pdf_document("pages.pdf", shared_stream_pdf(200, 500_000),
                                   doc_id="pages.pdf")
    assert isinstance(skipped, SkippedSource)
    assert "page contents decompress to more than 1,200,000 bytes" in skipped.reason


def test_pdf_with_too_many_pages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders_pdf, "MAX_PDF_PAGES", 5)
    skipped = loaders.pdf_document("long.pdf", shared_stream_pdf(6, 100), doc_id="long.pdf")
    assert isinstance(skipped, SkippedSource)
    assert skipped.reason.startswith("the PDF has more than 5 pages")


def test_a_parse_over_the_time_limit_is_refused_and_the_worker_replaced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Three pages share a 5 MB stream: about 15 s of pypdf's parsing, within every byte cap.
    monkeypatch.setattr(parsing, "PARSE_TIMEOUT_SECONDS", 1.0)
    started = time.monotonic()
    skipped = _one("slow.pdf", shared_stream_pdf(3, 5_000_000))
    assert time.monotonic() - started < 8
    assert isinstance(skipped, SkippedSource)
    assert skipped.reason.startswith("took longer than 1 s to parse")
    # The next file gets a fresh worker and parses as usual.
    monkeypatch.setattr(parsing, "PARSE_TIMEOUT_SECONDS", 30.0)
    assert isinstance(_one("page.html", b"<p>Still working.</p>"), Document)


# --- DOCX ----------------------------------------------------------------------------------

def test_docx_with_millions_of_empty_paragraphs_is_refused_quickly() -> None:
    data = empty_paragraphs_docx(3_500_000)
    assert len(data) < 100_000
    started = time.monotonic()
    skipped = _one("bomb.docx", data)
    assert time.monotonic() - started < 10
    assert isinstance(skipped, SkippedSource)
    # Packed 300 times over, it is stopped by the ratio before a paragraph is counted.
    assert "unpacks more than 200 times its packed size (the limit" in skipped.reason


def test_docx_with_too_many_paragraphs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders_docx, "MAX_DOCX_RATIO", 10**9)
    started = time.monotonic()
    skipped = loaders.docx_document("paras.docx", empty_paragraphs_docx(3_500_000),
                                    doc_id="paras.docx")
    assert time.monotonic() - started < 10
    assert isinstance(skipped, SkippedSource)
    assert f"more than {loaders.MAX_DOCX_PARAGRAPHS:,} paragraphs (the limit)" in skipped.reason


def test_docx_whose_xml_unpacks_too_far_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders_docx, "MAX_DOCX_XML_BYTES", 1_000_000)
    skipped = loaders.docx_document("big.docx", empty_paragraphs_docx(200_000),
                                    doc_id="big.docx")
    assert isinstance(skipped, SkippedSource)
    assert "XML unpacks to more than 1,000,000 bytes" in skipped.reason


def test_docx_zip_bomb_ratio_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders_docx, "MAX_DOCX_PARAGRAPHS", 10_000_000)
    skipped = loaders.docx_document("ratio.docx", empty_paragraphs_docx(1_000_000),
                                    doc_id="ratio.docx")
    assert isinstance(skipped, SkippedSource)
    assert "word/document.xml unpacks more than" in skipped.reason


# --- HTML ----------------------------------------------------------------------------------

def test_html_of_too_many_elements_is_refused_quickly() -> None:
    started = time.monotonic()
    skipped = _one("flat.html", b"<p>word</p>" * 1_000_000)
    assert time.monotonic() - started < 10
    assert isinstance(skipped, SkippedSource)
    assert f"more than {loaders.MAX_HTML_ELEMENTS:,} elements" in skipped.reason


def test_deeply_nested_html_is_bounded() -> None:
    depth = 100_000
    started = time.monotonic()
    loaded = _one("deep.html", b"<div>" * depth + b"deep text" + b"</div>" * depth)
    assert time.monotonic() - started < 15
    assert isinstance(loaded, Document | SkippedSource)


def test_html_with_too_much_text_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders_common, "MAX_EXTRACTED_CHARS", 1_000)
    with pytest.raises(ValueError, match="longer than 1,000 characters"):
        loaders.html_document("long.html", "<p>" + "word " * 1_000 + "</p>")


# --- a live server stays responsive --------------------------------------------------------

@contextmanager
def _uvicorn(settings: Settings, embedder: Embedder) -> Iterator[str]:
    """The app on a real loopback socket, served by uvicorn in a thread; its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, embedder=embedder),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_healthz_answers_while_a_pdf_bomb_is_parsed(settings: Settings, embedder: Embedder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The app runs in this process, so the parent-side time limit can be shortened.
    monkeypatch.setattr(parsing, "PARSE_TIMEOUT_SECONDS", 4.0)
    bomb = shared_stream_pdf(6, 8_000_000)
    with _uvicorn(settings, embedder) as base:
        outcome: dict[str, httpx.Response] = {}
        upload = threading.Thread(target=lambda: outcome.update(response=httpx.post(
            f"{base}/v1/documents", timeout=60,
            files={"file": ("bomb.pdf", bomb, "application/pdf")})))
        upload.start()
        slowest = 0.0
        polls = 0
        for _ in range(40):
            if not upload.is_alive():
                break
            started = time.monotonic()
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            polls += 1
            time.sleep(0.1)
        upload.join(timeout=60)
        assert polls >= 5, "the upload ended before /healthz could be polled during it"
        assert slowest < 1.0
        response = outcome["response"]
        assert response.status_code in (400, 422), response.text
        assert "bomb.pdf: took longer than 4 s to parse" in response.text
        # Nothing was stored, not even the collection.
        listed = httpx.get(f"{base}/v1/documents", timeout=5)
        assert listed.status_code == 404 or listed.json()["documents"] == [], listed.text


def test_a_parse_over_the_memory_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers take their memory limit when they start, so start fresh ones with a small one.
    parsing.shutdown_workers()
    monkeypatch.setattr(parsing, "WORKER_MEMORY_BYTES", 160 * 1024**2)
    try:
        # Under the element cap, but BeautifulSoup keeps about a kilobyte for each element.
        skipped = _one("wide.html", b"<p>word</p>" * 190_000)
        assert isinstance(skipped, SkippedSource)
        assert "needed more than the 160 MB memory limit" in skipped.reason
    finally:
        parsing.shutdown_workers()
    monkeypatch.undo()
    assert isinstance(_one("page.html", b"<p>Still working.</p>"), Document)
