"""`/v1/collections`: list, create and delete collections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from index.errors import Conflict
from index.store import validate_collection_name
from server.deps import ServicesDep
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
def list_collections(services: ServicesDep) -> CollectionList:
    """Every collection with its number of documents and chunks."""
    infos = []
    for record in services.store.collections():
        collection = services.store.collection(record.name)
        infos.append(CollectionInfo(name=record.name, documents=collection.count_documents(),
                                    chunks=collection.count_chunks(), model=record.model))
    return CollectionList(collections=infos, default=services.settings.collection)


@router.post("", response_model=CollectionInfo, status_code=201, responses=_ERRORS)
def create_collection(body: CollectionIn, services: ServicesDep) -> CollectionInfo:
    """An empty collection, for this server's embedding model."""
    name = validate_collection_name(body.name)
    if any(record.name == name for record in services.store.collections()):
        raise Conflict(f"collection {name!r} exists already", code="collection_exists")
    created = services.store.create_collection(name, model=services.embedder.name,
                                               dimension=services.embedder.dimension)
    return CollectionInfo(name=name, documents=0, chunks=0, model=created.model)


@router.delete("/{name}", response_model=CollectionDeleted, responses=_ERRORS)
def delete_collection(name: str, services: ServicesDep) -> CollectionDeleted:
    """Remove a collection with all its documents, vectors and indexes."""
    services.store.delete_collection(name)
    return CollectionDeleted(deleted=name)
