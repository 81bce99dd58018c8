"""The FastAPI application: routers, error handling and start-up."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.store import Store
from server.errors import install_error_handlers
from server.mcp import mount as mount_mcp
from server.metrics import Metrics
from server.middleware import BodyGuard, HeadAsGet, RequestContext, SecurityHeaders, SiteGuard
from server.options import ServerOptions
from server.routes import ask, chat, collections, documents, health, limits, responses, search
from server.routes import verify as verify_routes
from server.security import ApiKeyRequired

STATIC = Path(__file__).resolve().parent / "static"
# Swagger UI and ReDoc bundles shipped inside the fastapi-offline wheel: /docs and /redoc work
# with no network, and the pages name no outside host.
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
DOCS_PREFIX = "/docs-assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    """FastAPI's docs page with a CSP of its own: its bundles are served from here and it
    starts with an inline script, allowed by its hash (never 'unsafe-inline' for scripts)."""
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body))
    # Swagger UI and ReDoc set inline styles at run time; ReDoc runs its search in a blob worker.
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'")
    return page


def _version() -> str:
    try:
        return version("citeqa")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None,
               store: Store | None = None) -> FastAPI:
    """The citeqa API; the model and store are built once, at start-up."""
    settings = settings or Settings()
    options = ServerOptions.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Tests may hand the app a ready-made application; otherwise build it once, here.
        if getattr(app.state, "citeqa", None) is None:
            app.state.citeqa = Citeqa.build(settings, embedder=embedder, store=store)
        citeqa: Citeqa = app.state.citeqa
        citeqa.on_ingest = app.state.metrics.count_ingest
        if isinstance(citeqa.embedder, SentenceTransformerEmbedder):
            # Before the first request, not during it: /readyz then means fast answers.
            citeqa.embedder.prepare()
        async with mcp_sessions():
            yield

    app = FastAPI(
        title="citeqa",
        version=_version(),
        description=(
            "Ask questions about your articles; every answer cites the exact passages "
            "(character offsets into the document) it was taken from."
        ),
        lifespan=lifespan,
        # Served below, behind the API key when keys are configured.
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.metrics = Metrics(app)
    # Read by the body guard before any body, and by the key dependency.
    app.state.api_keys = list(options.api_keys)
    install_error_handlers(app)
    # Every /v1 route needs the API key when keys are configured; /healthz and the page don't.
    for router in (ask.router, chat.router, collections.router, documents.router,
                   limits.router, responses.router, search.router,
                   verify_routes.router):
        app.include_router(router, dependencies=[ApiKeyRequired])
    app.include_router(health.router)
    # MCP's streamable HTTP transport: the same tools as `citeqa mcp`, behind the same keys.
    mcp_sessions = mount_mcp(app, list(options.api_keys))
    # Added innermost first: CORS (when on) sees every request first, then the headers, the
    # request id and log, the Host and Origin checks, the key and body limit (before any body
    # is read), and HEAD turned into GET last.
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyGuard, max_body_bytes=options.max_body_bytes)
    app.add_middleware(SiteGuard, allowed_hosts=list(options.allowed_hosts),
                       trusted_origins=list(options.cors_origins))
    app.add_middleware(RequestContext)
    app.add_middleware(SecurityHeaders)
    if options.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                           allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_PREFIX, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, dependencies=[ApiKeyRequired])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[ApiKeyRequired])
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _docs_page(get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json", title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png"))

    @app.get("/redoc", include_in_schema=False, dependencies=[ApiKeyRequired])
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return _docs_page(get_redoc_html(
            openapi_url=f"{root}/openapi.json", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_PREFIX}/favicon.png", with_google_fonts=False))

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        # The page is static: no build step, no template; it talks to the API like any client.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
