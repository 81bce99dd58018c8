"""`POST /v1/chat/completions` (OpenAI-compatible) and `GET /v1/models`.

Apps that speak the OpenAI chat API (the openai SDKs, LangChain's ChatOpenAI, Open WebUI...)
use citeqa as they are: the last user message is the question, earlier turns are the
conversation. The citations travel twice: as OpenAI `url_citation` annotations of the message
(which span its `[n]` markers and link to the passage), and whole in a `citations` field of the
response (and of the final stream chunk), so none is lost on the way.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from citeqa.stream import Answered, AnswerEvents, Delta, Failed, Searching
from core.errors import InvalidInput
from qa.answer import Answer, Citation
from qa.followup import Turn
from server.deps import CiteqaDep
from server.openai_citations import (
    MODEL,
    SOURCES_SUFFIX,
    CitedReply,
    CiteqaExtras,
    ModelChoice,
    UrlCitationBody,
    cited_reply,
    model_choice,
    model_ids,
)
from server.schemas import (
    MAX_CONTENT_PARTS,
    AsOf,
    OpenAIErrorBody,
    as_of_date,
    check_conversation,
)

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (400, 401, 404, 413, 415, 422)}
MAX_CHAT_MESSAGES = 200


class ContentPart(BaseModel):
    """A part of a message's content; only text parts carry a question."""

    model_config = {"extra": "allow"}

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = {"extra": "allow"}

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS)] | None = None

    def text(self) -> str:
        """The message's text, its text parts joined."""
        if isinstance(self.content, list):
            return " ".join(part.text for part in self.content if part.text)
        return self.content or ""


class ChatRequest(BaseModel):
    """An OpenAI chat completion request. Sampling options are accepted and ignored."""

    model_config = {"extra": "allow"}

    model: str = Field(default=MODEL, description="`citeqa`, or `citeqa:<collection>`; ending "
                       f"in `{SOURCES_SUFFIX}`, the content ends with a list of the sources.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_CHAT_MESSAGES)
    stream: bool = Field(default=False, strict=True,
                         description="Send the answer as server-sent events.")
    temperature: float | None = Field(default=None, description="Accepted, ignored.")
    max_tokens: int | None = Field(default=None, description="Accepted, ignored.")
    n: int | None = Field(default=None, description="Only 1 is supported.")
    # A citeqa extra (with the openai SDK: extra_body={"as_of": "2024-05-02"}).
    as_of: AsOf = None


class ChatAnnotation(BaseModel):
    """A citation as OpenAI annotates a chat message: the `[n]` marker it spans, a link."""

    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitationBody


class ChatResponseMessage(BaseModel):
    """The assistant's reply."""

    role: Literal["assistant"] = "assistant"
    content: str
    annotations: list[ChatAnnotation] = Field(
        default_factory=list, description="One per citation number of each `[n]` marker.")


class Choice(BaseModel):
    """The one answer."""

    index: int = 0
    message: ChatResponseMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Sizes of the request and the answer, in words (a tokenizer's count would depend on a
    model: in extractive mode there is none, and in LLM mode it is the LLM server's)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """An OpenAI chat completion, with citeqa's citations."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation] = Field(
        description="The exact spans the answer cites; citation n is the marker [n] in the "
        "content. Each quote equals the cited document's text[start:end].")
    citeqa: CiteqaExtras


class ModelCard(BaseModel):
    """A model: `citeqa` (the default collection) or `citeqa:<collection>`."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeqa"


class ModelList(BaseModel):
    """The models this server offers, one per collection."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


STREAM_DESCRIPTION = """\
With `"stream": true`: server-sent events of `chat.completion.chunk` objects, as OpenAI sends
them: a first chunk with the assistant role, content chunks, a last chunk with
`finish_reason: "stop"` whose delta carries the `annotations` and which also carries `citations`
and `citeqa`, then `data: [DONE]`. With a `+sources` model the footer comes as the last content
chunk.
"""


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"description": "The answer (or, when streaming, " + STREAM_DESCRIPTION
                     + ")",
                     # Events are chunk objects, then the string [DONE].
                     "content": {"text/event-stream": {"schema": {}}}},
               **_ERRORS},
)
def chat_completions(request: ChatRequest, citeqa: CiteqaDep, http: Request
                     ) -> ChatCompletion | StreamingResponse:
    """Answer the last user message from the articles, citing exact spans."""
    choice = model_choice(request.model, citeqa)
    base_url = str(http.base_url)
    if request.n not in (None, 1):
        raise InvalidInput(f"n={request.n} is not supported; citeqa gives one answer (n=1)",
                           code="unsupported_n")
    if request.messages[-1].role != "user":
        raise InvalidInput("the last message must be the user's question",
                           code="no_user_question")
    texts = [m.text() for m in request.messages]
    # The question (the last message) has its own, smaller limit, checked when it is asked.
    check_conversation(texts[:-1], what="messages")
    question = texts[-1]
    history = [Turn(m.role, text) for m, text in zip(request.messages[:-1], texts, strict=False)
               if m.role in ("user", "assistant")]
    words_in = sum(len(text.split()) for text in texts)
    if not request.stream:
        answer = citeqa.ask(question, collection=choice.collection, history=history,
                            as_of=as_of_date(request.as_of))
        return _completion(answer, cited_reply(answer, choice, base_url), request.model,
                           choice, words_in)
    # Not live: a chat client keeps the text it is sent, so it gets the checked text only (and
    # the annotations' indexes hold for the text it was sent).
    events = citeqa.ask_stream(question, collection=choice.collection, history=history,
                               as_of=as_of_date(request.as_of), live=False)
    return StreamingResponse(_chunks(events, request.model, choice, base_url, words_in),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/models", response_model=ModelList, responses=_ERRORS)
def list_models(citeqa: CiteqaDep) -> ModelList:
    """`citeqa` for the default collection and `citeqa:<name>` for each collection, each also
    with `+sources`."""
    created = int(time.time())
    return ModelList(data=[ModelCard(id=name, created=created) for name in model_ids(citeqa)])


def _completion(answer: Answer, reply: CitedReply, model: str, choice: ModelChoice,
                words_in: int) -> ChatCompletion:
    words_out = len(reply.text.split())
    annotations = [ChatAnnotation(url_citation=span) for span in reply.annotations]
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(message=ChatResponseMessage(content=reply.text,
                                                    annotations=annotations))],
        usage=Usage(prompt_tokens=words_in, completion_tokens=words_out,
                    total_tokens=words_in + words_out),
        citations=answer.citations,
        citeqa=CiteqaExtras.of(answer, choice.collection),
    )


def _chunks(events: AnswerEvents, model: str, choice: ModelChoice, base_url: str,
            words_in: int) -> Iterator[str]:
    """The answer's events as OpenAI's `chat.completion.chunk` objects, then `[DONE]`."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    with closing(events):
        for event in events:
            match event:
                case Searching():
                    yield chunk({"role": "assistant", "content": ""})
                case Delta():
                    yield chunk({"content": event.text})
                case Answered():
                    reply = cited_reply(event.answer, choice, base_url)
                    if reply.footer:
                        yield chunk({"content": reply.footer})
                    completion = _completion(event.answer, reply, model, choice, words_in)
                    annotations = completion.choices[0].message.annotations
                    yield chunk({"annotations": [a.model_dump(mode="json") for a in annotations]},
                                "stop",
                                citations=[c.model_dump(mode="json")
                                           for c in completion.citations],
                                citeqa=completion.citeqa.model_dump(mode="json"),
                                usage=completion.usage.model_dump())
                case Failed():
                    # As OpenAI reports an error mid-stream.
                    error = {"message": event.error.detail, "type": "server_error",
                             "param": None, "code": event.error.code}
                    yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
