"""Bodies of `POST /v1/responses`, in the shape of OpenAI's Responses API (the fields its SDKs
read), with citeqa's citations as `url_citation` annotations of the output text."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from qa.answer import Citation
from server.openai_citations import MODEL, SOURCES_SUFFIX, CiteqaExtras, UrlCitationBody
from server.schemas import MAX_CONTENT_PARTS, AsOf

MAX_INPUT_ITEMS = 200


class InputPart(BaseModel):
    """A part of an input message's content: `input_text` (or, replayed, `output_text`)."""

    model_config = {"extra": "allow"}

    type: str
    text: str | None = None


class InputItem(BaseModel):
    """An item of `input`; messages are the conversation, other items are ignored."""

    model_config = {"extra": "allow"}

    type: str = Field(default="message", description="`message` (others are ignored).")
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: (str | Annotated[list[InputPart], Field(max_length=MAX_CONTENT_PARTS)]
              | None) = None

    def is_message(self) -> bool:
        """True for a message of the conversation."""
        return self.type == "message" and self.role is not None

    def text(self) -> str:
        """The message's text, its text parts joined."""
        if isinstance(self.content, list):
            return " ".join(part.text for part in self.content if part.text)
        return self.content or ""


class ResponseRequest(BaseModel):
    """An OpenAI Responses request. Sampling options and `instructions` are accepted and
    ignored."""

    model_config = {"extra": "allow"}

    model: str = Field(default=MODEL, description="`citeqa`, or `citeqa:<collection>`; ending "
                       f"in `{SOURCES_SUFFIX}`, the text ends with a list of the sources.")
    input: str | Annotated[list[InputItem], Field(min_length=1, max_length=MAX_INPUT_ITEMS)] = (
        Field(description="The question, or the conversation ending in the user's question."))
    stream: bool = Field(default=False, strict=True,
                         description="Send the answer as Responses server-sent events.")
    instructions: str | None = Field(default=None, description="Accepted, ignored.")
    previous_response_id: str | None = Field(
        default=None, description="Not supported: citeqa keeps no responses; send the "
        "conversation in `input`.")
    temperature: float | None = Field(default=None, description="Accepted, ignored.")
    max_output_tokens: int | None = Field(default=None, description="Accepted, ignored.")
    # A citeqa extra (with the openai SDK: extra_body={"as_of": "2024-05-02"}).
    as_of: AsOf = None


class UrlCitation(UrlCitationBody):
    """A citation of the output text, as OpenAI annotates one."""

    type: Literal["url_citation"] = "url_citation"


class OutputText(BaseModel):
    """The answer's text and its citations."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[UrlCitation] = Field(
        description="One per citation number of each `[n]` marker of the text.")
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(BaseModel):
    """The assistant's message."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed"]
    content: list[OutputText]


class InputTokensDetails(BaseModel):
    """Always zero: nothing is cached."""

    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    """Always zero: nothing reasons."""

    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    """Sizes of the input and the answer, in words (as in `/v1/chat/completions`)."""

    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class ResponseError(BaseModel):
    """Why a streamed response failed."""

    code: str
    message: str


class ResponseObject(BaseModel):
    """An OpenAI response, with citeqa's citations."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "failed"]
    model: str
    output: list[OutputMessage]
    error: ResponseError | None = None
    incomplete_details: None = None
    instructions: None = None
    parallel_tool_calls: bool = False
    tool_choice: Literal["none"] = "none"
    tools: list[Any] = Field(default_factory=list)
    usage: ResponseUsage | None = None
    citations: list[Citation] = Field(
        default_factory=list,
        description="The exact spans the answer cites, as in `/v1/chat/completions`.")
    citeqa: CiteqaExtras | None = None
