"""`/v1/collections`: list, create and delete collections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.deps import CiteqaDep
from server.schemas import (
    CollectionDeleted,
    CollectionIn,
    CollectionInfo,
    CollectionList,
    ErrorBody,
)

router = APIRouter(prefix="/v1/collections", tags=["collections"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 409, 415, 422)}


@router.get("", response_model=CollectionList, responses=_ERRORS)
def list_collections(citeqa: CiteqaDep) -> CollectionList:
    """Every collection with its number of documents and chunks."""
    return CollectionList(
        collections=[CollectionInfo(name=record.name, documents=documents, chunks=chunks,
                                    model=record.model)
                     for record, documents, chunks in citeqa.collections()],
        default=citeqa.collection_name(None))


@router.post("", response_model=CollectionInfo, status_code=201, responses=_ERRORS)
def create_collection(body: CollectionIn, citeqa: CiteqaDep) -> CollectionInfo:
    """An empty collection, for this server's embedding model."""
    created = citeqa.create_collection(body.name)
    return CollectionInfo(name=created.name, documents=0, chunks=0, model=created.model)


@router.delete("/{name}", response_model=CollectionDeleted, responses=_ERRORS)
def delete_collection(name: str, citeqa: CiteqaDep) -> CollectionDeleted:
    """Remove a collection with all its documents, vectors and indexes."""
    citeqa.delete_collection(name)
    return CollectionDeleted(deleted=name)
