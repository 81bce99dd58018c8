"""`GET /healthz`: is the server up."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import ServicesDep
from server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    """The server is up, with the number of collections it holds."""
    return Health(status="ok", collections=len(services.store.collections()))
