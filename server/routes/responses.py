"""`POST /v1/responses`: OpenAI's Responses API, so that clients built on it (the openai SDKs'
`client.responses`, LangChain's `ChatOpenAI(use_responses_api=True)`...) get the answer with
its citations as `url_citation` annotations of the output text, which they keep.

`input` is the question, or the conversation ending in it (earlier user and assistant messages
make follow-ups work, as in `/v1/chat/completions`).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from citeqa.stream import Answered, AnswerEvents, Delta, Failed, Searching
from core.errors import InvalidInput
from qa.answer import Answer
from qa.followup import Turn
from server.deps import CiteqaDep
from server.openai_citations import CitedReply, CiteqaExtras, ModelChoice, cited_reply, model_choice
from server.responses_schemas import (
    OutputMessage,
    OutputText,
    ResponseError,
    ResponseObject,
    ResponseRequest,
    ResponseUsage,
    UrlCitation,
)
from server.schemas import OpenAIErrorBody, as_of_date, check_conversation

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (400, 401, 404, 413, 415, 422)}

STREAM_DESCRIPTION = """\
With `"stream": true`: server-sent events as OpenAI sends them, each named by its `type`:
`response.created`, `response.in_progress`, `response.output_item.added`,
`response.content_part.added`, `response.output_text.delta` (many; with a `+sources` model the
footer is the last), `response.output_text.annotation.added` (one per annotation),
`response.output_text.done`, `response.content_part.done`, `response.output_item.done` and
`response.completed`, whose `response` is the whole response with `citations` and `citeqa`.
"""


@dataclass(frozen=True)
class _Reply:
    """What one response is made of, besides the answer."""

    model: str
    choice: ModelChoice
    base_url: str
    words_in: int
    response_id: str
    message_id: str
    created_at: int


@router.post(
    "/responses",
    response_model=ResponseObject,
    responses={200: {"description": "The response (or, when streaming, " + STREAM_DESCRIPTION
                     + ")",
                     "content": {"text/event-stream": {"schema": {}}}},
               **_ERRORS},
)
def create_response(request: ResponseRequest, citeqa: CiteqaDep, http: Request
                    ) -> ResponseObject | StreamingResponse:
    """Answer the input's question from the articles, citing exact spans."""
    choice = model_choice(request.model, citeqa)
    if request.previous_response_id is not None:
        raise InvalidInput("previous_response_id is not supported: citeqa keeps no responses; "
                           "send the earlier messages in input", code="unsupported_parameter")
    question, history, words_in = _conversation(request)
    reply = _Reply(model=request.model, choice=choice, base_url=str(http.base_url),
                   words_in=words_in, response_id=f"resp_{uuid.uuid4().hex}",
                   message_id=f"msg_{uuid.uuid4().hex}", created_at=int(time.time()))
    if not request.stream:
        answer = citeqa.ask(question, collection=choice.collection, history=history,
                            as_of=as_of_date(request.as_of))
        return _response(answer, cited_reply(answer, choice, reply.base_url), reply)
    # Not live, as in the chat route: the client keeps the checked text it is sent.
    events = citeqa.ask_stream(question, collection=choice.collection, history=history,
                               as_of=as_of_date(request.as_of), live=False)
    return StreamingResponse(_events(events, reply), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _conversation(request: ResponseRequest) -> tuple[str, list[Turn], int]:
    """The question, the earlier turns, and the input's size in words."""
    if isinstance(request.input, str):
        return request.input, [], len(request.input.split())
    messages = [item for item in request.input if item.is_message()]
    if not messages or messages[-1].role != "user":
        raise InvalidInput("the last message of input must be the user's question",
                           code="no_user_question")
    texts = [message.text() for message in messages]
    # The question (the last message) has its own, smaller limit, checked when it is asked.
    check_conversation(texts[:-1], what="input messages")
    history = [Turn(m.role, text) for m, text in zip(messages[:-1], texts, strict=False)
               if m.role in ("user", "assistant")]
    return texts[-1], history, sum(len(text.split()) for text in texts)


def _message(reply: _Reply, status: Literal["in_progress", "completed"],
             content: list[OutputText]) -> OutputMessage:
    return OutputMessage(id=reply.message_id, status=status, content=content)


def _output_text(cited: CitedReply) -> OutputText:
    return OutputText(text=cited.text,
                      annotations=[UrlCitation(**span.model_dump()) for span in cited.annotations])


def _response(answer: Answer, cited: CitedReply, reply: _Reply) -> ResponseObject:
    words_out = len(cited.text.split())
    return ResponseObject(
        id=reply.response_id, created_at=reply.created_at, status="completed", model=reply.model,
        output=[_message(reply, "completed", [_output_text(cited)])],
        usage=ResponseUsage(input_tokens=reply.words_in, output_tokens=words_out,
                            total_tokens=reply.words_in + words_out),
        citations=answer.citations, citeqa=CiteqaExtras.of(answer, reply.choice.collection))


def _events(events: AnswerEvents, reply: _Reply) -> Iterator[str]:
    """The answer's events as the Responses API's server-sent events."""
    sequence = itertools.count()
    in_text = {"item_id": reply.message_id, "output_index": 0, "content_index": 0}

    def send(kind: str, **fields: Any) -> str:
        body = {"type": kind, "sequence_number": next(sequence), **fields}
        return f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"

    def pending(status: Literal["in_progress", "failed"] = "in_progress",
                error: ResponseError | None = None) -> dict[str, Any]:
        return ResponseObject(id=reply.response_id, created_at=reply.created_at, status=status,
                              model=reply.model, output=[], error=error).model_dump(mode="json")

    with closing(events):
        for event in events:
            match event:
                case Searching():
                    yield send("response.created", response=pending())
                    yield send("response.in_progress", response=pending())
                    yield send("response.output_item.added", output_index=0,
                               item=_message(reply, "in_progress", []).model_dump(mode="json"))
                    yield send("response.content_part.added", **in_text,
                               part=OutputText(text="", annotations=[]).model_dump(mode="json"))
                case Delta():
                    yield send("response.output_text.delta", **in_text, delta=event.text,
                               logprobs=[])
                case Answered():
                    cited = cited_reply(event.answer, reply.choice, reply.base_url)
                    if cited.footer:
                        yield send("response.output_text.delta", **in_text, delta=cited.footer,
                                   logprobs=[])
                    text = _output_text(cited)
                    for index, annotation in enumerate(text.annotations):
                        yield send("response.output_text.annotation.added", **in_text,
                                   annotation_index=index,
                                   annotation=annotation.model_dump(mode="json"))
                    yield send("response.output_text.done", **in_text, text=text.text,
                               logprobs=[])
                    yield send("response.content_part.done", **in_text,
                               part=text.model_dump(mode="json"))
                    yield send("response.output_item.done", output_index=0,
                               item=_message(reply, "completed", [text]).model_dump(mode="json"))
                    yield send("response.completed", response=_response(
                        event.answer, cited, reply).model_dump(mode="json"))
                case Failed():
                    error = ResponseError(code=event.error.code, message=event.error.detail)
                    yield send("response.failed", response=pending("failed", error))
