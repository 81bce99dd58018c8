"""`GET /v1/collections`: the collections of this data folder and their sizes."""

from __future__ import annotations

from fastapi import APIRouter

from server.deps import ServicesDep
from server.schemas import CollectionInfo, CollectionList

router = APIRouter(prefix="/v1/collections", tags=["collections"])


@router.get("", response_model=CollectionList)
def list_collections(services: ServicesDep) -> CollectionList:
    """Every collection with its number of documents and chunks."""
    infos = []
    for record in services.store.collections():
        collection = services.store.collection(record.name)
        infos.append(CollectionInfo(name=record.name, documents=collection.count_documents(),
                                    chunks=collection.count_chunks(), model=record.model))
    return CollectionList(collections=infos, default=services.settings.collection)
