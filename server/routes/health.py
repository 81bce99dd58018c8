"""`GET /healthz` (is the server up), `GET /readyz` (can it answer), `GET /metrics` (behind
the API key when keys are configured: route names and counts are not for everyone)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.deps import CiteqaDep
from server.schemas import Health, Ready
from server.security import ApiKeyRequired

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(citeqa: CiteqaDep) -> Health:
    """The server is up, with the number of collections it holds."""
    return Health(status="ok", collections=len(citeqa.store.collections()))


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
def readyz(request: Request) -> Ready | JSONResponse:
    """Ready only once the embedding model and the store are loaded and the store answers."""
    citeqa = getattr(request.app.state, "citeqa", None)
    if citeqa is None:
        return JSONResponse(status_code=503,
                            content={"status": "starting", "worker": os.getpid()})
    if not citeqa.store.reachable():
        return JSONResponse(status_code=503,
                            content={"status": "store_unavailable", "worker": os.getpid()})
    return Ready(status="ready", worker=os.getpid())


@router.get("/metrics", response_class=Response, dependencies=[ApiKeyRequired],
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format."}})
def metrics(request: Request) -> Response:
    """Request counts and latency by route, ingestion counters, collection sizes."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
