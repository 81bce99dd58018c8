"""`POST /v1/ask` (the answer object) and `POST /v1/ask/stream` (the same, as SSE events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from citeqa.stream import Answered, AnswerEvents, Delta, Failed, Searching
from qa.answer import Answer
from server.deps import CiteqaDep
from server.schemas import AskRequest, ErrorBody, as_of_date, check_conversation

router = APIRouter(prefix="/v1", tags=["ask"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 422)}

STREAM_DESCRIPTION = """\
Server-sent events (`text/event-stream`), in this order:

- `question`: `{"question", "rewritten_question"}`: what is being searched, sent first;
- `delta`: `{"text"}`: the next piece of the answer text, many times; concatenated, they are
  the answer (in LLM mode, the model's raw text as it is generated, before the citation check);
- `answer`: the complete answer object (the same as `POST /v1/ask` returns), last: in LLM mode
  its text is the checked one, without the sentences the check dropped;
- `error`: `{"error", "detail"}` instead of `answer` if the LLM fails mid-stream.

A bad request (empty question, unknown collection...) is refused before the stream starts,
with the usual JSON error body and status.
"""


@router.post("/ask", response_model=Answer, responses=_ERRORS)
def ask(request: AskRequest, citeqa: CiteqaDep) -> Answer:
    """Answer a question from the collection's articles, citing the exact spans used."""
    check_conversation([message.content for message in request.history], what="history")
    return citeqa.ask(request.question, collection=request.collection, top_k=request.top_k,
                      filters=request.filters.to_filters() if request.filters else None,
                      history=request.turns(), as_of=as_of_date(request.as_of))


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    responses={
        200: {"description": STREAM_DESCRIPTION,
              "content": {"text/event-stream": {"schema": {"type": "object"}}}},
        **_ERRORS,
    },
)
def ask_stream(request: AskRequest, citeqa: CiteqaDep) -> StreamingResponse:
    """Answer a question as a stream of server-sent events (see the 200 response)."""
    check_conversation([message.content for message in request.history], what="history")
    # Refuses a bad question (empty, too long, unknown collection) before the stream starts.
    events = citeqa.ask_stream(
        request.question, collection=request.collection, top_k=request.top_k,
        filters=request.filters.to_filters() if request.filters else None,
        history=request.turns(), as_of=as_of_date(request.as_of))
    return StreamingResponse(
        _server_sent(events),
        media_type="text/event-stream",
        # Proxies must pass events through as they come, not buffer the whole answer.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _server_sent(events: AnswerEvents) -> Iterator[str]:
    """Each event as SSE; closing this closes `events`, which stops a model mid-answer."""
    with closing(events):
        for event in events:
            match event:
                case Searching():
                    yield _event("question", {"question": event.question,
                                              "rewritten_question": event.rewritten_question})
                case Delta():
                    yield _event("delta", {"text": event.text})
                case Answered():
                    yield _event("answer", event.answer.model_dump(mode="json"))
                case Failed():
                    yield _event("error", {"error": event.error.code,
                                           "detail": event.error.detail})


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
