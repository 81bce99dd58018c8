"""Request ids, access logs, API keys and body size limits checked before the body is read,
Host and Origin checks, security headers and HEAD, for every request."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from contextvars import ContextVar
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.documents import printable
from server.errors import error_response
from server.security import key_refusal

log = logging.getLogger("citeqa.access")
request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContext(BaseHTTPMiddleware):
    """Gives each request an id (kept from `X-Request-ID` if sane) and logs one line per
    request (never its headers)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Run the request with its id set; stamp the id on the response."""
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            response.headers["X-Request-ID"] = rid
            seconds = time.perf_counter() - started
            # The route's template ("/v1/documents/{doc_id:path}"), not the raw path, so the
            # metrics have one series per route, not one per document.
            route = getattr(request.scope.get("route"), "path", None) or "(unmatched)"
            metrics = getattr(request.app.state, "metrics", None)
            if metrics is not None:
                metrics.observe(request.method, route, response.status_code, seconds)
            # The path is decoded: %1b would be a raw ESC rewriting the operator's terminal.
            log.info("%s %s %d %.1f ms request_id=%s", request.method,
                     printable(request.url.path), response.status_code, seconds * 1000, rid)
            return response
        finally:
            request_id.reset(token)


# A client that stops sending its body for this long is answered 408 and dropped, so a slow
# or stalled upload cannot hold a request (and its buffered part of the body) for ever.
BODY_IDLE_SECONDS = 30.0


class _BodyRefused(Exception):
    """Raised from `receive` once a body is refused; never leaves `BodyGuard`."""


class BodyGuard:
    """Checks the API key, then bounds the body by the bytes actually received, and by time.

    FastAPI reads and parses a body before it runs the key dependency, and `Content-Length`
    is only what the client claims (a chunked body has none), so both checks live here, in
    front of the app: a request without a valid key for /v1 is refused before one byte of its
    body is read, and a body is refused with 413 as soon as it passes `max_body_bytes`,
    without reading the rest. A body that stalls for `idle_seconds` is refused with 408.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int,
                 idle_seconds: float | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.idle_seconds = BODY_IDLE_SECONDS if idle_seconds is None else idle_seconds

    def _too_large(self, size: str) -> Response:
        return error_response(
            413, "request_too_large",
            f"the request body is {size} bytes; the limit is {self.max_body_bytes:,} "
            "(CITEQA_MAX_UPLOAD_BYTES, plus room for the multipart envelope)")

    def _too_slow(self) -> Response:
        return error_response(
            408, "request_timeout",
            f"the request body stalled: nothing arrived for {self.idle_seconds:g} s")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a missing key (401) or an oversized body (413); else pass on, counting."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if path == "/v1" or path.startswith("/v1/"):
            state = getattr(scope.get("app"), "state", None)
            refusal = key_refusal(getattr(state, "api_keys", None) or [],
                                  headers.get("authorization"))
            if refusal is not None:
                # Every 401 answers in OpenAI's shape, as the key dependency's does.
                await error_response(401, "invalid_api_key", refusal, openai_style=True)(
                    scope, receive, send)
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(f"{int(declared):,}")(scope, receive, send)
            return

        received = 0
        body_done = False
        refused: Response | None = None
        started = False

        async def counted() -> Message:
            nonlocal received, body_done, refused
            if body_done:
                # After the body, Starlette waits here for the client to disconnect, for as
                # long as a streamed answer runs: no time limit on that.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_seconds)
            except TimeoutError:
                refused = self._too_slow()
                raise _BodyRefused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    refused = self._too_large(f"over {self.max_body_bytes:,}")
                    raise _BodyRefused
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            # FastAPI turns any error while reading a body into its own 400; once the body
            # is refused, our answer replaces it.
            if refused is not None and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if refused is None or started:
                raise
        if refused is not None and not started:
            await refused(scope, receive, send)


# The page is static and loads only its own script and stylesheet, so the policy can forbid
# every inline script, every other origin and every frame around it.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class SecurityHeaders:
    """Stamps a strict CSP, nosniff, no framing and no referrer on every response; a response
    that set its own CSP (the API docs pages) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers the response lacks."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, stamped)


def _split_host(host: str) -> tuple[str, int | None]:
    """`host[:port]` as (lower-case name, port or None); IPv6 names keep their brackets."""
    host = host.strip().lower()
    if host.count(":") > 1 and not host.startswith("["):
        return f"[{host}]", None  # a bare IPv6 address, as written in a settings list
    if host.startswith("["):
        name, _, rest = host.partition("]")
        port = rest.removeprefix(":")
        return f"{name}]", int(port) if port.isdigit() else None
    name, colon, port = host.partition(":")
    return name, int(port) if colon and port.isdigit() else None


def _host_allowed(host: str, allowed: list[str]) -> bool:
    name, port = _split_host(host)
    if not name:
        return False
    for entry in allowed:
        if entry == "*":
            return True
        if entry.startswith("*."):
            if name.endswith(entry[1:]):
                return True
            continue
        entry_name, entry_port = _split_host(entry)
        if entry_name == name and entry_port in (None, port):
            return True
    return False


def _same_origin(origin: str, host: str) -> bool:
    """True when `origin` names the host and port this request came to. Both sides drop the
    origin scheme's default port, so a TLS proxy that forwards `Host: example.org` still
    matches `https://example.org`."""
    try:
        parsed = urlsplit(origin)
        origin_port = parsed.port
    except ValueError:
        return False
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
        return False
    default = _DEFAULT_PORTS[parsed.scheme]
    origin_name, _ = _split_host(parsed.netloc.rpartition("@")[2])
    host_name, host_port = _split_host(host)
    return origin_name == host_name and (origin_port or default) == (host_port or default)


class SiteGuard:
    """Answers only to allowed `Host` names (DNS rebinding), and refuses state-changing
    requests that a browser sent from another site (cross-site request forgery).

    Runs before any body is read, so a refused upload costs nothing and stores nothing.
    Requests without an `Origin` header (curl, SDKs, server-side clients) are not affected:
    browsers always send one on cross-origin POST, PUT, PATCH and DELETE.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str],
                 trusted_origins: list[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.any_origin = "*" in trusted_origins
        self.trusted_origins = {o.rstrip("/").lower() for o in trusted_origins}

    def _origin_allowed(self, origin: str, host: str) -> bool:
        # "null" is what sandboxed frames, file: pages and some redirects send: never ours.
        if origin.strip().lower() == "null":
            return False
        if self.any_origin or origin.rstrip("/").lower() in self.trusted_origins:
            return True
        return _same_origin(origin, host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a foreign Host (400) or a foreign Origin on a write (403); else pass on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        refusal: Response | None = None
        if self.allowed_hosts and not _host_allowed(host, self.allowed_hosts):
            refusal = error_response(
                400, "host_not_allowed",
                f"this server does not answer to the host {host[:200]!r}; list it in "
                "CITEQA_ALLOWED_HOSTS to allow it")
        elif scope["method"] in _UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin, host):
                refusal = error_response(
                    403, "cross_origin_refused",
                    f"a page at {origin[:200]!r} may not change anything here: the origin is "
                    "neither this server's own nor listed in CITEQA_CORS_ORIGINS")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answers HEAD wherever GET is answered: FastAPI's GET routes do not accept HEAD, so run
    the GET and send its status and headers without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a HEAD request as GET and drop the body; pass anything else on."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}

        async def headers_only(message: Message) -> None:
            # The router records the matched route on the scope it saw; the access log and
            # the metrics read it from the original one.
            if "route" in as_get:
                scope.setdefault("route", as_get["route"])
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(as_get, receive, headers_only)
