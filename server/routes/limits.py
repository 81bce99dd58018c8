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
    """The longest question and the largest upload this server accepts."""
    return Limits(max_question_chars=citeqa.settings.max_question_chars,
                  max_upload_bytes=citeqa.settings.max_upload_bytes)
