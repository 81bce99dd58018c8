"""Fetch a web page (or a PDF/DOCX/text file) by URL and load it like an uploaded file.

The document id is the URL as given, so fetching it again replaces the old version; the
document's `url` is the final URL after redirects, kept as the citation link. HTML, plain text,
PDF and DOCX bodies go through `index.loaders.load_bytes`; every failure (bad scheme, timeout,
connection error, HTTP error, body too large, unsupported content type) becomes a
`SkippedSource` whose reason says what happened.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from index.loaders import load_bytes, load_sources
from index.models import Document, SkippedSource

USER_AGENT = "citeqa/0.1"
FETCHED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 10

_DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Content type -> the file suffix `load_bytes` dispatches on.
_SUFFIX_BY_TYPE = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    _DOCX_TYPE: ".docx",
}
# Servers often send files as a generic type; then the URL's own suffix decides.
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/download"}
_SUFFIX_FROM_PATH = {".html", ".htm", ".txt", ".pdf", ".docx"}
_ACCEPT = f"text/html, application/xhtml+xml, text/plain, application/pdf, {_DOCX_TYPE}, */*;q=0.1"
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def is_url(text: str) -> bool:
    """True when `text` is written as a URL (`scheme://...`), not a file path.

    Any scheme counts, so `ftp://...` reaches `fetch_url` and gets a clear refusal instead of
    "no such file".
    """
    return _URL.fullmatch(text.strip()) is not None


def fetch_url(url: str, *, timeout: float, max_bytes: int) -> Document | SkippedSource:
    """Download `url` (following redirects) and load it; a failure is a `SkippedSource`.

    `timeout` bounds the whole download, not just each network read, so a server that
    trickles bytes cannot hold ingestion; bodies over `max_bytes` (after decompression) are
    refused.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in FETCHED_SCHEMES:
        scheme = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return SkippedSource(url, f"only http:// and https:// URLs can be fetched, not {scheme}",
                             url)
    if not parts.hostname:
        return SkippedSource(url, "not a valid URL: it has no host name", url)
    try:
        fetched = _download(url, timeout=timeout, max_bytes=max_bytes)
    except httpx.TimeoutException:
        return SkippedSource(url, f"timed out after {timeout:g} s fetching {url}", url)
    except httpx.TooManyRedirects:
        return SkippedSource(url, f"more than {MAX_REDIRECTS} redirects fetching {url}", url)
    except httpx.UnsupportedProtocol as exc:
        # Also raised when a redirect points at a non-http(s) URL.
        return SkippedSource(url, f"only http:// and https:// URLs can be fetched ({exc})", url)
    except httpx.InvalidURL as exc:
        return SkippedSource(url, f"not a valid URL: {exc}", url)
    except httpx.ConnectError as exc:
        detail = str(exc) or "connection refused"
        return SkippedSource(url, f"cannot connect to {parts.hostname}: {detail}", url)
    except httpx.HTTPError as exc:
        return SkippedSource(url, f"fetching {url} failed: {type(exc).__name__}: {exc}", url)
    if isinstance(fetched, SkippedSource):
        return fetched
    response, body = fetched
    final_url = str(response.url)
    suffix = _suffix_for(response, final_url)
    if suffix is None:
        content_type = response.headers.get("content-type") or "(none)"
        return SkippedSource(
            url,
            f"unsupported content type {content_type} from {final_url}; "
            "citeqa reads HTML, plain text, PDF and DOCX",
            url,
        )
    if suffix in {".html", ".htm", ".txt"}:
        body = _to_utf8(body, response, html=suffix != ".txt")
    # The name only picks the loader (its skip reasons are renamed to the URL below); every
    # suffix used here yields exactly one item.
    loaded = next(load_bytes(f"download{suffix}", body, doc_id=url))
    if isinstance(loaded, SkippedSource):
        return dataclasses.replace(loaded, name=url)
    return dataclasses.replace(loaded, url=final_url)


def _download(url: str, *, timeout: float, max_bytes: int
              ) -> tuple[httpx.Response, bytes] | SkippedSource:
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout,
                      headers=headers) as client, client.stream("GET", url) as response:
        final_url = str(response.url)
        if response.status_code >= 400:
            phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
            return SkippedSource(url, f"HTTP {response.status_code}{phrase} from {final_url}",
                                 url)
        declared = response.headers.get("content-length", "")
        # Content-Length is the encoded size; a compressed body is checked as it streams.
        if declared.isdigit() and int(declared) > max_bytes and not _is_compressed(response):
            return SkippedSource(url, _too_large(final_url, max_bytes, int(declared)), url)
        body = bytearray()
        for piece in response.iter_bytes():
            body += piece
            if len(body) > max_bytes:
                return SkippedSource(url, _too_large(final_url, max_bytes), url)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("download took too long", request=response.request)
        return response, bytes(body)


def _too_large(final_url: str, max_bytes: int, size: int | None = None) -> str:
    amount = f"{size:,} bytes, over" if size is not None else "over"
    return f"the page at {final_url} is {amount} the {max_bytes:,}-byte limit"


def _is_compressed(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() not in {"", "identity"}


def _suffix_for(response: httpx.Response, final_url: str) -> str | None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _SUFFIX_BY_TYPE:
        return _SUFFIX_BY_TYPE[content_type]
    if content_type in _GENERIC_TYPES:
        path_suffix = PurePosixPath(urlsplit(final_url).path).suffix.lower()
        if path_suffix in _SUFFIX_FROM_PATH:
            return path_suffix
    return None


def _to_utf8(body: bytes, response: httpx.Response, *, html: bool) -> bytes:
    """Re-encode a text body to the UTF-8 `load_bytes` expects, using the declared charset.

    The charset comes from the Content-Type header, else (HTML) a `<meta charset>`; with none,
    the body is passed on as is, and a non-UTF-8 one is skipped with the loader's reason.
    """
    charset = response.charset_encoding
    if not charset and html:
        match = _META_CHARSET.search(body[:4096])
        charset = match.group(1).decode("ascii") if match else None
    if not charset or charset.lower().replace("_", "-") in {"utf-8", "utf8"}:
        return body
    try:
        return body.decode(charset, errors="replace").encode("utf-8")
    except LookupError:  # an unknown charset name: let the loader judge the bytes
        return body


def load_locations(locations: Iterable[str | Path], *, max_bytes: int, timeout: float
                   ) -> Iterator[Document | SkippedSource]:
    """Documents from files, folders and web page URLs, in the order given."""
    for location in locations:
        if isinstance(location, str) and is_url(location):
            yield fetch_url(location, timeout=timeout, max_bytes=max_bytes)
        else:
            yield from load_sources([location], max_bytes=max_bytes)
