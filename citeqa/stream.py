"""An answer as events, for the streaming routes (`/v1/ask/stream`, and
`/v1/chat/completions` or `/v1/responses` with `stream`): what is being searched, the answer's
text piece by piece, then the whole answer (or, if the LLM fails mid-way, the error).

Live (LLM mode, `/v1/ask/stream`): the pieces are the model's text as it writes it, before the
check; the final answer holds the checked text. Otherwise the answer is complete before the
first event, so any refusal is an ordinary error response, and its checked text is sent in
pieces.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Generator
from dataclasses import dataclass

from core.documents import Filters
from core.errors import CiteqaError
from qa.answer import Answer
from qa.generate import StopGenerating
from qa.pipeline import Asked, Assistant

_PIECE = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Searching:
    """First: the question as asked, and the standalone question searched when the
    conversation changed it."""

    question: str
    rewritten_question: str | None


@dataclass(frozen=True)
class Delta:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class Answered:
    """Last: the complete answer, citations and all."""

    answer: Answer


@dataclass(frozen=True)
class Failed:
    """Last, instead of `Answered`: the LLM failed after the stream had started."""

    error: CiteqaError


AnswerEvent = Searching | Delta | Answered | Failed
AnswerEvents = Generator[AnswerEvent, None, None]
"""Closing it (as a server does when its client leaves) stops a model mid-answer."""


def answer_events(assistant: Assistant, asked: Asked, *, top_k: int | None = None,
                  filters: Filters | None = None, live: bool = True) -> AnswerEvents:
    """The events of one prepared question's answer (see the module's docstring)."""
    if live and assistant.chat_model is not None:
        return _generated(assistant, asked, top_k=top_k, filters=filters)
    answer = assistant.answer(asked, top_k=top_k, filters=filters)
    return _pieces(asked, answer)


def _pieces(asked: Asked, answer: Answer) -> AnswerEvents:
    yield Searching(asked.question, asked.rewritten)
    for piece in _PIECE.findall(answer.answer):
        yield Delta(piece)
    yield Answered(answer)


def _generated(assistant: Assistant, asked: Asked, *, top_k: int | None,
               filters: Filters | None) -> AnswerEvents:
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
            outcome["answer"] = assistant.answer(asked, top_k=top_k, filters=filters,
                                                 on_token=on_token)
        except StopGenerating:
            pass
        except CiteqaError as exc:
            outcome["error"] = exc
        finally:
            tokens.put(None)

    threading.Thread(target=run, daemon=True, name="citeqa-generate").start()
    try:
        yield Searching(asked.question, asked.rewritten)
        while (token := tokens.get()) is not None:
            yield Delta(token)
    finally:
        # The server stops iterating when the client disconnects, and the generator is
        # closed here; without this the model would write the whole answer to nobody.
        reader_left.set()
    error = outcome.get("error")
    if isinstance(error, CiteqaError):
        yield Failed(error)
        return
    answer = outcome["answer"]
    assert isinstance(answer, Answer)
    yield Answered(answer)
