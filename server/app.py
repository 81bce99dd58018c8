"""The FastAPI application: routers, error handling and start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from index.embedding import Embedder, SentenceTransformerEmbedder
from index.settings import Settings
from index.store import Store
from server.errors import install_error_handlers
from server.metrics import Metrics
from server.middleware import RequestContext
from server.routes import ask, chat, collections, documents, health, search
from server.security import ApiKeyRequired
from server.services import Services

STATIC = Path(__file__).resolve().parent / "static"


def _version() -> str:
    try:
        return version("citeqa")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None,
               store: Store | None = None) -> FastAPI:
    """The citeqa API; the model and store are built once, at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Tests may hand the app ready-made services; otherwise build them once, here.
        if getattr(app.state, "services", None) is None:
            app.state.services = Services.build(settings, embedder=embedder, store=store)
        if isinstance(app.state.services.embedder, SentenceTransformerEmbedder):
            # Before the first request, not during it: /readyz then means fast answers.
            app.state.services.embedder.prepare()
        yield

    app = FastAPI(
        title="citeqa",
        version=_version(),
        description=(
            "Ask questions about your articles; every answer cites the exact passages "
            "(character offsets into the document) it was taken from."
        ),
        lifespan=lifespan,
    )
    app.state.metrics = Metrics(app)
    install_error_handlers(app)
    # Every /v1 route needs the API key when keys are configured; /healthz and the page don't.
    for router in (ask.router, chat.router, collections.router, documents.router,
                   search.router):
        app.include_router(router, dependencies=[ApiKeyRequired])
    app.include_router(health.router)
    # Room for a multipart envelope around the largest upload.
    app.add_middleware(RequestContext, max_body_bytes=settings.max_upload_bytes + 1024 * 1024)
    if settings.allowed_origins():
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins(),
                           allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        # The page is static: no build step, no template; it talks to the API like any client.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
