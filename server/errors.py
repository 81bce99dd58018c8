"""The one place the API turns exceptions into JSON error responses.

citeqa's own routes answer `{"error": "<code>", "detail": "<what to do>"}`. The OpenAI-compatible
routes (`/v1/chat/completions`, `/v1/responses`, `/v1/models`) and every 401 answer in OpenAI's
shape, `{"error": {"message", "type", "param", "code"}}`, so OpenAI clients raise their usual
errors; those bodies carry `detail` too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import CiteqaError

log = logging.getLogger("citeqa.server")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_request",
}


_OPENAI_PATHS = ("/v1/chat/", "/v1/models", "/v1/responses")


def error_response(status: int, code: str, detail: str, *, openai_style: bool = False
                   ) -> JSONResponse:
    """The JSON body of an error, in citeqa's shape or OpenAI's."""
    if not openai_style:
        return JSONResponse(status_code=status, content={"error": code, "detail": detail})
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse(status_code=status, content={
        "error": {"message": detail, "type": kind, "param": None, "code": code},
        "detail": detail,
    })


def _openai_style(request: Request, status: int) -> bool:
    return status == 401 or request.url.path.startswith(_OPENAI_PATHS)


_UNPARSABLE_BODY = "There was an error parsing the body"
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type"}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _body_not_sent_as_json(errors: list[dict[str, Any]], content_type: str) -> bool:
    """True when the body was refused as a whole because it did not come as JSON."""
    return not _is_json(content_type) and any(
        tuple(error.get("loc", ())) == ("body",) and error.get("type") in _NOT_AN_OBJECT
        for error in errors)


def _problem(error: dict[str, Any]) -> str:
    """One validation problem in words: where, and what is wrong."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type")
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 else None
        reason = (error.get("ctx") or {}).get("error") or "invalid JSON"
        where = f" at character {position}" if isinstance(position, int) else ""
        return f"the body is not valid JSON: {reason}{where}"
    if loc == ("body",) and kind in _NOT_AN_OBJECT:
        return "the body must be a JSON object ({...}), not a list, string, number or null"
    if loc == ("body",) and kind == "missing":
        return "the body is empty; send a JSON object"
    where = ".".join(str(part) for part in loc if part != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    """Map citeqa errors, validation errors, HTTP errors and crashes to JSON bodies."""

    @app.exception_handler(CiteqaError)
    async def _citeqa(request: Request, exc: CiteqaError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail,
                              openai_style=_openai_style(request, exc.status))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        content_type = request.headers.get("content-type", "")
        if _body_not_sent_as_json(errors, content_type):
            return error_response(
                415, "unsupported_media_type",
                "send the body as JSON, with the header Content-Type: application/json (got "
                f"{content_type.split(';')[0].strip() or 'no content type'})",
                openai_style=_openai_style(request, 415))
        problems = [_problem(error) for error in errors]
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request",
                              openai_style=_openai_style(request, 422))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            # FastAPI's words for a JSON body its parser gave up on (bytes that are not UTF-8,
            # nesting deeper than Python's parser goes): the same mistake as any invalid JSON.
            return error_response(
                422, "invalid_request",
                "the body could not be parsed as JSON; send one JSON object, UTF-8 encoded",
                openai_style=_openai_style(request, 422))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail),
                                  openai_style=_openai_style(request, exc.status_code))
        # Keep what the exception says about the response, e.g. `Allow` on a 405.
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error",
                              "citeqa hit an unexpected error; the server log has the details",
                              openai_style=_openai_style(request, 500))
