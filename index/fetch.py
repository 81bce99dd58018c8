"""Fetch a web page (or a PDF/DOCX/text file) by URL and load it like an uploaded file.

The document id is the URL as given, so fetching it again replaces the old version; the
document's `url` is the final URL after redirects, kept as the citation link. HTML, plain text,
PDF and DOCX bodies go through `index.loaders.load_bytes`; every failure becomes a
`SkippedSource` whose reason is shown to the user.

A URL is something anyone with the API can type, so fetching is careful (issue 13):

- only http(s), and never a URL holding a user name or password;
- the host is resolved here, every address it resolves to is checked, and the request goes to
  that checked address (with the original Host header and TLS name), so a DNS answer that
  changes between the check and the connection (rebinding) cannot swap in another address;
- loopback, private, link-local, multicast, unspecified and reserved addresses (also inside
  IPv4-mapped, 6to4 and NAT64 IPv6 addresses) are refused unless `allow_private`
  (CITEQA_FETCH_ALLOW_PRIVATE) is on;
- redirects are followed here, at most `MAX_REDIRECTS`, each hop checked like the first;
- every network or HTTP failure gives the same message, so the reasons cannot tell a closed
  port from an open one or from an HTTP error (no port scanning through citeqa). The real
  cause goes to the log, for the operator.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from core.documents import Document, SkippedSource
from index.loaders import load_bytes, load_sources

USER_AGENT = "citeqa/0.1"
FETCHED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
# A name resolving to several addresses: try this many before giving up (a host whose IPv6
# address is unreachable from here still answers on IPv4).
MAX_ADDRESSES_TRIED = 4

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
# `scheme://user:password@` (everything before the last @ of the authority).
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64's well-known prefix (RFC 6052): 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

log = logging.getLogger("citeqa.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Refused(Exception):
    """A URL the fetcher will not request, for a reason the user can act on (shown as is)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Failed(Exception):
    """A fetch that went wrong on the way; the user only ever sees `fetch_failed`'s message."""


def is_url(text: str) -> bool:
    """True when `text` is written as a URL (`scheme://...`), not a file path.

    Any scheme counts, so `ftp://...` reaches `fetch_url` and gets a clear refusal instead of
    "no such file".
    """
    return _URL.fullmatch(text.strip()) is not None


def fetch_failed(url: str) -> str:
    """The one reason given for every network or HTTP failure of `url`, whatever went wrong."""
    return (f"could not fetch {url}: no page came back from it (the server may be down, slow "
            "or refusing, the name may not exist, or the page may be missing or failing); "
            "check the URL in a browser")


def without_credentials(url: str) -> str:
    """`url` with any `user:password@` masked, fit to show, log or keep as an id."""
    return _USERINFO.sub(r"\1***@", url)


def fetch_url(url: str, *, timeout: float, max_bytes: int, allow_private: bool = False
              ) -> Document | SkippedSource:
    """Download `url` (following redirects) and load it; a failure is a `SkippedSource`.

    `timeout` bounds the whole download, redirects included, not just each network read, so
    a server that trickles bytes cannot hold ingestion; bodies over `max_bytes` (after
    decompression) are refused. Internal addresses are refused unless `allow_private`.
    """
    url = url.strip()
    shown = without_credentials(url)
    try:
        target = _checked_url(url, redirected=False)
        fetched = _download(target, timeout=timeout, max_bytes=max_bytes,
                            allow_private=allow_private)
    except _Refused as exc:
        return SkippedSource(shown, exc.reason, shown)
    except (_Failed, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, UnicodeError,
            ValueError) as exc:
        # The cause stays in the log: telling the caller would make citeqa a port scanner.
        log.info("fetching %r failed: %s: %s", shown, type(exc).__name__, exc)
        return SkippedSource(shown, fetch_failed(shown), shown)
    if isinstance(fetched, SkippedSource):
        return dataclasses.replace(fetched, name=shown, doc_id=shown)
    final_url, response, body = fetched
    suffix = _suffix_for(response, final_url)
    if suffix is None:
        content_type = response.headers.get("content-type") or "(none)"
        return SkippedSource(
            shown,
            f"unsupported content type {content_type} from {final_url}; "
            "citeqa reads HTML, plain text, PDF and DOCX",
            shown,
        )
    if suffix in {".html", ".htm", ".txt"}:
        body = _to_utf8(body, response, html=suffix != ".txt")
    # The name only picks the loader (its skip reasons are renamed to the URL below); every
    # suffix used here yields exactly one item.
    loaded = next(load_bytes(f"download{suffix}", body, doc_id=url))
    if isinstance(loaded, SkippedSource):
        return dataclasses.replace(loaded, name=url)
    return dataclasses.replace(loaded, url=final_url)


def _checked_url(url: str, *, redirected: bool) -> httpx.URL:
    """`url` parsed, if it is an http(s) URL with a host and no credentials.

    What the user typed gets a reason they can act on; a bad redirect target (which the user
    did not type) is a plain failure.
    """
    scheme = urlsplit(url).scheme.lower()
    problem: str | None = None
    if scheme not in FETCHED_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        problem = f"only http:// and https:// URLs can be fetched, not {shown}"
    else:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            problem = f"not a valid URL: {exc}"
        else:
            if parsed.userinfo:
                problem = ("the URL holds a user name or password (user:password@); citeqa "
                           "never sends those, so remove them from the URL")
            elif not parsed.host:
                problem = "not a valid URL: it has no host name"
            else:
                return parsed.copy_with(fragment=None)
    if redirected:
        raise _Failed(f"redirect to an unusable URL: {problem}")
    raise _Refused(problem)


def _lookup(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, as text, in the resolver's order.

    `getaddrinfo` also reads the odd IPv4 spellings (2130706433, 0x7f000001, 127.1), exactly
    as a connection would, so the checked address is the one those spellings mean.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_internal(address: IPAddress) -> bool:
    """True for an address inside the network (or not a real destination at all)."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: check it too.
        if address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            candidates.append(address.sixtofour)
        if address.teredo is not None:
            candidates.extend(address.teredo)
        if address in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return any(
        a.is_private or a.is_loopback or a.is_link_local or a.is_multicast
        or a.is_unspecified or a.is_reserved or not a.is_global
        for a in candidates
    )


def _addresses(url: httpx.URL, *, allow_private: bool, redirected: bool) -> list[IPAddress]:
    """The checked addresses to connect to for `url`; refuses internal ones."""
    host = url.raw_host.decode("ascii")
    port = url.port or _DEFAULT_PORTS[url.scheme]
    try:
        addresses = [ipaddress.ip_address(text) for text in _lookup(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise _Failed(f"cannot resolve {host!r}: {exc}") from exc
    if not addresses:
        raise _Failed(f"{host!r} resolves to no address")
    # One internal address among public ones refuses the name: which one a connection would
    # use is not ours to choose reliably.
    if not allow_private and any(is_internal(a) for a in addresses):
        where = "redirects to an address" if redirected else "points"
        raise _Refused(f"this URL {where} inside the network, which citeqa does not fetch; "
                       "set CITEQA_FETCH_ALLOW_PRIVATE=true to allow it")
    return addresses


def _transport() -> httpx.BaseTransport:
    """The network below the client (tests swap in a simulated one)."""
    # No kept-alive connections: a redirect to another name on the same address must not
    # reuse a TLS connection whose certificate was checked for the first name.
    return httpx.HTTPTransport(trust_env=False, retries=0,
                               limits=httpx.Limits(max_keepalive_connections=0))


def _send(client: httpx.Client, url: httpx.URL, *, deadline: float, allow_private: bool,
          redirected: bool) -> httpx.Response:
    """GET `url` from a checked address of its host, as a stream; raises on failure."""
    addresses = _addresses(url, allow_private=allow_private, redirected=redirected)
    host = url.raw_host.decode("ascii")
    # TLS is negotiated and the certificate checked for the name, not the address.
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    last: Exception | None = None
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        request = client.build_request(
            "GET", url.copy_with(host=str(address)),
            headers={"Host": url.netloc.decode("ascii")}, extensions=extensions,
            timeout=httpx.Timeout(remaining),
        )
        try:
            return client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = exc
    raise _Failed(f"cannot connect to {host!r}: {last or 'out of time'}")


def _download(target: httpx.URL, *, timeout: float, max_bytes: int, allow_private: bool
              ) -> tuple[str, httpx.Response, bytes] | SkippedSource:
    """(final URL, response, body) of `target`, redirects followed; raises on failure.

    A body too large is a `SkippedSource` (the server answered: that is no port oracle).
    """
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    url = target
    # trust_env off: no proxy (it would connect, and resolve, for us) and no .netrc
    # credentials; redirects are followed below so that every hop is checked.
    with httpx.Client(transport=_transport(), trust_env=False, follow_redirects=False,
                      timeout=timeout, headers=headers) as client:
        for hop in range(MAX_REDIRECTS + 1):
            response = _send(client, url, deadline=deadline, allow_private=allow_private,
                             redirected=hop > 0)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = _checked_url(str(url.join(location)), redirected=True)
                    continue
                if not 200 <= response.status_code < 300:
                    raise _Failed(f"HTTP {response.status_code} from {url}")
                final_url = str(url)
                declared = response.headers.get("content-length", "")
                # Content-Length is the encoded size; a compressed body is checked as it
                # streams.
                if (declared.isdigit() and int(declared) > max_bytes
                        and not _is_compressed(response)):
                    return SkippedSource(final_url, _too_large(final_url, max_bytes,
                                                               int(declared)))
                body = bytearray()
                for piece in response.iter_bytes():
                    body += piece
                    if len(body) > max_bytes:
                        return SkippedSource(final_url, _too_large(final_url, max_bytes))
                    if time.monotonic() > deadline:
                        raise _Failed("download took too long")
                return final_url, response, bytes(body)
            finally:
                response.close()
    raise _Failed(f"more than {MAX_REDIRECTS} redirects")


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


def load_locations(locations: Iterable[str | Path], *, max_bytes: int, timeout: float,
                   allow_private: bool = False) -> Iterator[Document | SkippedSource]:
    """Documents from files, folders and web page URLs, in the order given."""
    for location in locations:
        if isinstance(location, str) and is_url(location):
            yield fetch_url(location, timeout=timeout, max_bytes=max_bytes,
                            allow_private=allow_private)
        else:
            yield from load_sources([location], max_bytes=max_bytes)
