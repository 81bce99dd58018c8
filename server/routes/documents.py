"""`/v1/documents`: list, show, upload and delete the articles of a collection."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from index.errors import InvalidInput, TooLarge, UnreadableFile
from index.fetch import fetch_url, is_url
from index.ingest import ingest_documents
from index.loaders import load_bytes, record_document
from index.models import Document, IngestReport, SkippedSource
from index.settings import Settings
from index.store import validate_collection_name
from server.deps import CollectionQuery, ServicesDep
from server.schemas import (
    Deleted,
    DocumentFull,
    DocumentList,
    DocumentsIn,
    DocumentSummary,
    ErrorBody,
    IngestResult,
    UrlIn,
)

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 413, 415, 422)
}

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files (.txt, .md, .html, .jsonl, "
                                           ".pdf, .docx).",
                        },
                        "collection": {"type": "string"},
                    },
                }
            },
            "application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/DocumentsIn"},
                {"$ref": "#/components/schemas/UrlIn"},
            ]}},
        },
    }
}


@router.get("", response_model=DocumentList, responses=_ERRORS)
def list_documents(services: ServicesDep, collection: CollectionQuery = None) -> DocumentList:
    """The documents of a collection, without their text."""
    target = services.store.collection(collection or services.settings.collection)
    return DocumentList(
        collection=target.name,
        documents=[DocumentSummary.of(d) for d in target.documents()],
    )


@router.get("/{doc_id:path}", response_model=DocumentFull, responses=_ERRORS)
def get_document(doc_id: str, services: ServicesDep,
                 collection: CollectionQuery = None) -> DocumentFull:
    """One document with the full text that citation offsets refer to."""
    target = services.store.collection(collection or services.settings.collection)
    return DocumentFull.of(target.document(doc_id))


@router.delete("/{doc_id:path}", response_model=Deleted, responses=_ERRORS)
def delete_document(doc_id: str, services: ServicesDep,
                    collection: CollectionQuery = None) -> Deleted:
    """Remove a document from every index; it is never retrieved again."""
    target = services.store.collection(collection or services.settings.collection)
    target.delete([doc_id])
    return Deleted(collection=target.name, deleted=doc_id)


@router.post("", response_model=IngestResult, responses=_ERRORS, openapi_extra=_UPLOAD_BODY)
async def add_documents(request: Request, services: ServicesDep,
                        collection: CollectionQuery = None) -> IngestResult:
    """Ingest uploaded files (multipart field `file`, repeatable), JSON `{"documents": [...]}`,
    or a web page: JSON `{"url": "https://..."}` (fetched with a timeout and size limit).

    Re-sending an unchanged document adds nothing; a changed one replaces its old chunks.
    """
    limit = services.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"the request is {int(declared):,} bytes; the upload limit is {limit:,}",
                       code="upload_too_large")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        loaded, form_collection = await _read_upload(request, limit)
    elif content_type.startswith("application/json"):
        loaded, form_collection = await _read_json(request, services.settings)
    else:
        raise InvalidInput(
            "send files as multipart/form-data (field 'file') or documents as application/json "
            '({"documents": [{"id", "text", ...}]})',
            code="unsupported_media_type",
            status=415,
        )
    name = validate_collection_name(collection or form_collection or services.settings.collection)
    if not any(isinstance(item, Document) for item in loaded):
        # Nothing readable: refuse before touching the store, so a failed upload leaves no
        # trace (not even an empty collection).
        skipped = [item for item in loaded if isinstance(item, SkippedSource)]
        request.app.state.metrics.count_ingest(IngestReport(skipped=skipped))
        raise UnreadableFile(_nothing_ingested(skipped))
    report: IngestReport = await run_in_threadpool(
        ingest_documents, loaded, store=services.store, collection=name,
        embedder=services.embedder, settings=services.settings,
    )
    request.app.state.metrics.count_ingest(report)
    if report.skipped and not (report.added or report.updated or report.unchanged):
        raise UnreadableFile(_nothing_ingested(report.skipped))
    return IngestResult(collection=name, **report.to_dict())


def _nothing_ingested(skipped: list[SkippedSource], shown: int = 20) -> str:
    """Why nothing was ingested: the first reasons, and how many more there are."""
    if not skipped:
        return "nothing was ingested: the upload held no documents"
    reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:shown])
    more = f"; and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
    return f"nothing was ingested: {reasons}{more}"


async def _read_upload(request: Request, limit: int
                       ) -> tuple[list[Document | SkippedSource], str | None]:
    form = await request.form(max_files=1000, max_fields=100)
    files = [value for key, value in form.multi_items()
             if key == "file" and isinstance(value, UploadFile)]
    if not files:
        raise InvalidInput("no files in the upload; send them in the multipart field 'file'",
                           code="no_files")
    loaded: list[Document | SkippedSource] = []
    for upload in files:
        name = _safe_name(upload.filename or "upload")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{name} is over the {limit:,}-byte upload limit",
                           code="upload_too_large")
        # Parsing blocks (PDF, DOCX and HTML wait for a worker process for up to its time
        # limit), so it runs in a thread: the event loop keeps serving other requests.
        loaded.extend(await run_in_threadpool(_load_upload, name, data, limit))
    collection = form.get("collection")
    return loaded, collection if isinstance(collection, str) and collection else None


def _load_upload(name: str, data: bytes, limit: int) -> list[Document | SkippedSource]:
    """Every document (or skip reason) in one uploaded file."""
    return list(load_bytes(name, data, doc_id=name, max_bytes=limit))


async def _read_json(request: Request, settings: Settings
                     ) -> tuple[list[Document | SkippedSource], str | None]:
    raw = await request.body()
    if _is_url_request(raw):
        try:
            page = UrlIn.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidInput(f"invalid url request: {exc.errors()[0]['msg']}",
                               code="invalid_request", status=422) from exc
        if not is_url(page.url):
            raise InvalidInput(f"not a web address: {page.url!r}; use http:// or https://",
                               code="invalid_url")
        fetched = await run_in_threadpool(fetch_url, page.url, timeout=settings.fetch_timeout,
                                          max_bytes=settings.max_upload_bytes,
                                          allow_private=settings.fetch_allow_private)
        return [fetched], page.collection
    try:
        body = DocumentsIn.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid documents: {problems}", code="invalid_request",
                           status=422) from exc
    loaded: list[Document | SkippedSource] = []
    for item in body.documents:
        try:
            loaded.append(record_document(item.model_dump(exclude_none=True)))
        except ValueError as exc:
            loaded.append(SkippedSource(item.id, str(exc), item.id))
    return loaded, body.collection


def _is_url_request(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    # Not JSON, or nested too deeply for Python's parser: the documents parser says which.
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and "url" in body and "documents" not in body


def _safe_name(filename: str) -> str:
    """The file's own name, never a path: uploads cannot name places on the server."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name not in ("", ".", "..") else "upload"
