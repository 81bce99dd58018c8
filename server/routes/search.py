"""`POST /v1/search`: the ranked passages for a query, without an answer (for RAG clients)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.deps import CiteqaDep
from server.schemas import ErrorBody, SearchPassage, SearchRequest, SearchResult, as_of_date

router = APIRouter(prefix="/v1", tags=["search"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 422)}


@router.post("/search", response_model=SearchResult, responses=_ERRORS)
def search(request: SearchRequest, citeqa: CiteqaDep) -> SearchResult:
    """Retrieve the passages a question would be answered from, best first.

    The same hybrid retrieval (dense, sentence and BM25, fused) and reranking as
    `POST /v1/ask`, without answer extraction; every passage's `start`/`end` are character
    offsets into its document (`GET /v1/documents/{doc_id}`).
    """
    name = citeqa.collection_name(request.collection)
    found = citeqa.search(
        request.query,
        collection=name,
        top_k=request.top_k,
        filters=request.filters.to_filters() if request.filters else None,
        as_of=as_of_date(request.as_of),
    )
    return SearchResult(
        query=" ".join(request.query.split()),
        collection=name,
        passages=[SearchPassage(**passage.model_dump()) for passage in found],
    )
