"""`/v1/documents`: list, show, upload and delete the articles of a collection."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from citeqa import Citeqa
from citeqa.app import LIST_LIMIT, MAX_LIST_LIMIT, Loaded
from core.documents import IngestReport
from core.errors import InvalidInput, TooLarge
from server.deps import CiteqaDep, CollectionQuery
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

# Bounds checked by Citeqa.document_page, whose error names the bad value.
LimitQuery = Annotated[int, Query(
    description=f"Documents per page, 1 to {MAX_LIST_LIMIT} (default {LIST_LIMIT}).")]
CursorQuery = Annotated[str | None, Query(
    description="The `next_cursor` of the previous page; leave out for the first page.")]

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
def list_documents(citeqa: CiteqaDep, collection: CollectionQuery = None,
                   limit: LimitQuery = LIST_LIMIT, cursor: CursorQuery = None) -> DocumentList:
    """One page of the documents of a collection, by id, without their text.

    Follow `next_cursor` until it is null to list them all. Every document that exists for
    the whole listing appears exactly once; one added meanwhile appears if its id sorts after
    the page being read.
    """
    page = citeqa.document_page(collection, limit=limit, cursor=cursor)
    return DocumentList(
        collection=citeqa.collection_name(collection),
        documents=[DocumentSummary.listed(d) for d in page.documents],
        next_cursor=page.next_cursor,
        total=page.total,
    )


@router.get("/{doc_id:path}", response_model=DocumentFull, responses=_ERRORS)
def get_document(doc_id: str, citeqa: CiteqaDep,
                 collection: CollectionQuery = None) -> DocumentFull:
    """One document with the full text that citation offsets refer to."""
    return DocumentFull.of(citeqa.document(doc_id, collection))


@router.delete("/{doc_id:path}", response_model=Deleted, responses=_ERRORS)
def delete_document(doc_id: str, citeqa: CiteqaDep,
                    collection: CollectionQuery = None) -> Deleted:
    """Remove a document from every index; it is never retrieved again."""
    return Deleted(collection=citeqa.delete(doc_id, collection), deleted=doc_id)


@router.post("", response_model=IngestResult, responses=_ERRORS, openapi_extra=_UPLOAD_BODY)
async def add_documents(request: Request, citeqa: CiteqaDep,
                        collection: CollectionQuery = None) -> IngestResult:
    """Ingest uploaded files (multipart field `file`, repeatable), JSON `{"documents": [...]}`,
    or a web page: JSON `{"url": "https://..."}` (fetched with a timeout and size limit).

    Re-sending an unchanged document adds nothing; a changed one replaces its old chunks.
    """
    limit = citeqa.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"the request is {int(declared):,} bytes; the upload limit is {limit:,}",
                       code="upload_too_large")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        loaded, form_collection = await _read_upload(request, citeqa)
    elif content_type.startswith("application/json"):
        loaded, form_collection = await _read_json(request, citeqa)
    else:
        raise InvalidInput(
            "send files as multipart/form-data (field 'file') or documents as application/json "
            '({"documents": [{"id", "text", ...}]})',
            code="unsupported_media_type",
            status=415,
        )
    name = collection or form_collection
    report: IngestReport = await run_in_threadpool(citeqa.ingest, loaded, collection=name)
    return IngestResult(collection=citeqa.collection_name(name), **report.to_dict())


async def _read_upload(request: Request, citeqa: Citeqa) -> tuple[list[Loaded], str | None]:
    limit = citeqa.settings.max_upload_bytes
    form = await request.form(max_files=1000, max_fields=100)
    files = [value for key, value in form.multi_items()
             if key == "file" and isinstance(value, UploadFile)]
    if not files:
        raise InvalidInput("no files in the upload; send them in the multipart field 'file'",
                           code="no_files")
    loaded: list[Loaded] = []
    for upload in files:
        name = _safe_name(upload.filename or "upload")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{name} is over the {limit:,}-byte upload limit",
                           code="upload_too_large")
        # Parsing blocks (PDF, DOCX and HTML wait for a worker process for up to its time
        # limit), so it runs in a thread: the event loop keeps serving other requests.
        loaded.extend(await run_in_threadpool(citeqa.read_file, name, data))
    collection = form.get("collection")
    return loaded, collection if isinstance(collection, str) and collection else None


async def _read_json(request: Request, citeqa: Citeqa) -> tuple[list[Loaded], str | None]:
    raw = await request.body()
    if _is_url_request(raw):
        try:
            page = UrlIn.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidInput(f"invalid url request: {exc.errors()[0]['msg']}",
                               code="invalid_request", status=422) from exc
        return await run_in_threadpool(citeqa.fetch, page.url), page.collection
    try:
        body = DocumentsIn.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid documents: {problems}", code="invalid_request",
                           status=422) from exc
    records = [item.model_dump(exclude_none=True) for item in body.documents]
    return citeqa.read_records(records), body.collection


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
