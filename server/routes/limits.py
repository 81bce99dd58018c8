"""`/v1/limits`: the sizes this server accepts, read by the chat page before it sends."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.deps import CiteqaDep
from server.schemas import ErrorBody, Limits

router = APIRouter(prefix="/v1/limits", tags=["limits"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}}


@router.get("", response_model=Limits, responses=_ERRORS)
def get_limits(citeqa: CiteqaDep) -> Limits:
    """The longest question, the largest upload and the longest text to verify this server
    accepts."""
    settings = citeqa.settings
    return Limits(max_question_chars=settings.max_question_chars,
                  max_upload_bytes=settings.max_upload_bytes,
                  max_verify_chars=settings.max_verify_chars,
                  max_verify_sentences=settings.max_verify_sentences)
