"""Request ids, request size limits and access logs, for every request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from server.errors import error_response

log = logging.getLogger("citeqa.access")
request_id: ContextVar[str] = ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestContext(BaseHTTPMiddleware):
    """Gives each request an id (kept from `X-Request-ID` if sane), refuses oversized bodies
    by their declared length, and logs one line per request (never its headers)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        super().__init__(app)
        self.max_body_bytes = max_body_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Run the request with its id set; stamp the id on the response."""
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                response: Response = error_response(
                    413, "request_too_large",
                    f"the request body is {int(declared):,} bytes; the limit is "
                    f"{self.max_body_bytes:,} (CITEQA_MAX_UPLOAD_BYTES)")
            else:
                response = await call_next(request)
            response.headers["X-Request-ID"] = rid
            seconds = time.perf_counter() - started
            # The route's template ("/v1/documents/{doc_id:path}"), not the raw path, so the
            # metrics have one series per route, not one per document.
            route = getattr(request.scope.get("route"), "path", None) or "(unmatched)"
            metrics = getattr(request.app.state, "metrics", None)
            if metrics is not None:
                metrics.observe(request.method, route, response.status_code, seconds)
            log.info("%s %s %d %.1f ms request_id=%s", request.method, request.url.path,
                     response.status_code, seconds * 1000, rid)
            return response
        finally:
            request_id.reset(token)
