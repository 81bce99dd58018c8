"""`POST /v1/ask` (the answer object) and `POST /v1/ask/stream` (the same, as SSE events)."""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from index.errors import CiteqaError
from qa.generate import StopGenerating
from qa.models import Answer
from qa.question import prepare_question
from server.deps import ServicesDep
from server.schemas import AskRequest, ErrorBody, as_of_date, check_conversation
from server.services import Services

router = APIRouter(prefix="/v1", tags=["ask"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 404, 413, 415, 422)}
_PIECE = re.compile(r"\S+\s*")

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


def _answer(request: AskRequest, services: ServicesDep) -> Answer:
    check_conversation([message.content for message in request.history], what="history")
    return services.assistant.ask(
        request.question,
        collection=request.collection,
        top_k=request.top_k,
        filters=request.filters.to_filters() if request.filters else None,
        history=request.turns(),
        as_of=as_of_date(request.as_of),
    )


@router.post("/ask", response_model=Answer, responses=_ERRORS)
def ask(request: AskRequest, services: ServicesDep) -> Answer:
    """Answer a question from the collection's articles, citing the exact spans used."""
    return _answer(request, services)


@router.post(
    "/ask/stream",
    response_class=StreamingResponse,
    responses={
        200: {"description": STREAM_DESCRIPTION,
              "content": {"text/event-stream": {"schema": {"type": "object"}}}},
        **_ERRORS,
    },
)
def ask_stream(request: AskRequest, services: ServicesDep) -> StreamingResponse:
    """Answer a question as a stream of server-sent events (see the 200 response)."""
    if services.assistant.chat_model is None:
        events: Iterator[str] = answer_events(_answer(request, services))
    else:
        # Refuse bad requests before the stream starts, as in extractive mode.
        prepare_question(request.question, max_chars=services.settings.max_question_chars)
        check_conversation([message.content for message in request.history], what="history")
        services.store.collection(request.collection or services.settings.collection)
        events = _generated_events(request, services)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        # Proxies must pass events through as they come, not buffer the whole answer.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _generated_events(request: AskRequest, services: Services) -> Iterator[str]:
    """LLM mode: the model's tokens as they come, then the checked answer. A reader who
    leaves stops the model at its next token."""
    tokens: queue.Queue[str | None] = queue.Queue()
    outcome: dict[str, Answer | CiteqaError] = {}
    reader_left = threading.Event()

    def on_token(token: str) -> None:
        if reader_left.is_set():
            raise StopGenerating
        tokens.put(token)

    def run() -> None:
        try:
            outcome["answer"] = services.assistant.ask(
                request.question, collection=request.collection, top_k=request.top_k,
                filters=request.filters.to_filters() if request.filters else None,
                history=request.turns(), on_token=on_token,
                as_of=as_of_date(request.as_of))
        except StopGenerating:
            pass
        except CiteqaError as exc:
            outcome["error"] = exc
        finally:
            tokens.put(None)

    threading.Thread(target=run, daemon=True).start()
    try:
        rewrite = services.assistant.standalone(request.question, request.turns(),
                                                collection=request.collection)
        yield _event("question", {"question": " ".join(request.question.split()),
                                  "rewritten_question": rewrite.text if rewrite.changed
                                  else None})
        while (token := tokens.get()) is not None:
            yield _event("delta", {"text": token})
    finally:
        # Starlette stops iterating when the client disconnects, and the generator is
        # closed here; without this the model would write the whole answer to nobody.
        reader_left.set()
    error = outcome.get("error")
    if isinstance(error, CiteqaError):
        yield _event("error", {"error": error.code, "detail": error.detail})
        return
    answer = outcome["answer"]
    assert isinstance(answer, Answer)
    yield _event("answer", answer.model_dump(mode="json"))


def answer_events(answer: Answer) -> Iterator[str]:
    """The SSE events of an answer: question, text pieces, then the full answer object."""
    yield _event("question", {"question": answer.question,
                              "rewritten_question": answer.rewritten_question})
    for piece in _PIECE.findall(answer.answer):
        yield _event("delta", {"text": piece})
    yield _event("answer", answer.model_dump(mode="json"))


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
