"""`POST /v1/ask`: a question in, the answer object out."""

from __future__ import annotations

from fastapi import APIRouter

from qa.models import Answer
from server.deps import ServicesDep
from server.schemas import AskRequest, ErrorBody

router = APIRouter(prefix="/v1", tags=["ask"])

_ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 413: {"model": ErrorBody},
           422: {"model": ErrorBody}}


@router.post("/ask", response_model=Answer, responses=_ERRORS)  # type: ignore[arg-type]
def ask(request: AskRequest, services: ServicesDep) -> Answer:
    """Answer a question from the collection's articles, citing the exact spans used."""
    return services.assistant.ask(
        request.question,
        collection=request.collection,
        top_k=request.top_k,
        filters=request.filters.to_filters() if request.filters else None,
    )
