"""`POST /v1/verify` (any text checked sentence by sentence) and `POST /v1/verify/stream`
(the same, one SSE event per sentence as it is checked)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from core.errors import CiteqaError
from qa.timeframe import today
from qa.verify import CheckedStatement, Verdict, Verification
from server.deps import CiteqaDep
from server.schemas import ErrorBody, as_of_date
from server.verify_schemas import VerifyDone, VerifyRequest

log = logging.getLogger("citeqa.server")

router = APIRouter(prefix="/v1", tags=["verify"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 422)}

VERDICTS = """\
Each sentence gets a verdict: `supported` (an article sentence says the same, with every name,
number and date it states; `evidence` cites that exact span), `contradicted` (the passage it
matches says otherwise: negation, another person in the role, another figure, name or date;
`reason` says what differs), `unsupported` (nothing in the collection states it) or
`not_checkable` (a question, greeting, opinion or fragment).
"""

STREAM_DESCRIPTION = """\
Server-sent events (`text/event-stream`), in this order:

- `sentence`: one checked sentence (`{"text", "start", "end", "verdict", "score", "reason",
  "evidence"}`, as in `POST /v1/verify`'s `sentences`), once per sentence, in the text's order,
  as each is checked;
- `done`: `{"counts", "collection", "as_of"}`, last;
- `error`: `{"error", "detail"}` instead of `done` if checking fails mid-way.

A bad request (empty, binary or too long text, too many sentences, unknown collection) is
refused before the stream starts, with the usual JSON error body and status.
"""


@router.post("/verify", response_model=Verification, responses=_ERRORS,
             description=VERDICTS)
def verify(request: VerifyRequest, citeqa: CiteqaDep) -> Verification:
    """Check every sentence of any text against the collection's articles."""
    return citeqa.verify(request.text, collection=request.collection,
                         filters=request.filters.to_filters() if request.filters else None,
                         as_of=as_of_date(request.as_of))


@router.post(
    "/verify/stream",
    response_class=StreamingResponse,
    responses={
        200: {"description": STREAM_DESCRIPTION,
              "content": {"text/event-stream": {"schema": {"type": "object"}}}},
        **_ERRORS,
    },
)
def verify_stream(request: VerifyRequest, citeqa: CiteqaDep) -> StreamingResponse:
    """Check a text as a stream of server-sent events, one per sentence (see the 200 response)."""
    name = citeqa.collection_name(request.collection)
    day = as_of_date(request.as_of) or today()
    # Refuses a text that cannot be checked (and an unknown collection) before the stream.
    sentences = citeqa.verify_stream(
        request.text, collection=name, as_of=day,
        filters=request.filters.to_filters() if request.filters else None)
    return StreamingResponse(
        _server_sent(sentences, collection=name, as_of=day.isoformat()),
        media_type="text/event-stream",
        # Proxies must pass each verdict through as it comes, not buffer the whole report.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _server_sent(sentences: Iterator[CheckedStatement], *, collection: str,
                 as_of: str) -> Iterator[str]:
    """Each sentence as an SSE event, then the counts. Closing this (the server does when
    the client leaves) closes `sentences`: nothing more is checked for nobody."""
    counts = {verdict.value: 0 for verdict in Verdict}
    with closing(sentences):  # type: ignore[type-var]
        try:
            for sentence in sentences:
                counts[sentence.verdict.value] += 1
                yield _event("sentence", sentence.model_dump(mode="json"))
        except CiteqaError as exc:
            # The status line is sent already: the failure can only be told as an event.
            yield _event("error", {"error": exc.code, "detail": exc.detail})
            return
        except Exception:
            log.exception("verify stream failed after %d sentences", sum(counts.values()))
            yield _event("error", {"error": "internal_error", "detail": (
                "citeqa hit an unexpected error; the server log has the details")})
            return
    done = VerifyDone(counts=counts, collection=collection, as_of=as_of)
    yield _event("done", done.model_dump(mode="json"))


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
