"""The FastAPI application: routers, error handling and start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from index.embedding import Embedder
from index.settings import Settings
from index.store import Store
from server.errors import install_error_handlers
from server.routes import ask, documents, health
from server.services import Services


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
        app.state.services = Services.build(settings, embedder=embedder, store=store)
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
    install_error_handlers(app)
    app.include_router(ask.router)
    app.include_router(documents.router)
    app.include_router(health.router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
