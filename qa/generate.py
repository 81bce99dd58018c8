"""Stage 4b — generated answers (LLM mode): an LLM writes from the numbered passages, then
every sentence is checked against the passage it cites (`qa.check`).

The extractive answerer stays the default and the fallback; this one is used when
`CITEQA_LLM` names a chat model (`openai:<model>`, `ollama:<model>`...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from index.errors import CiteqaError, ConfigurationError
from index.settings import Settings
from qa.followup import Turn
from qa.retrieve import Candidate

SYSTEM_PROMPT = """\
Answer the question using only the numbered passages below, in one or two short sentences.
Put the number of the passage you used in square brackets at the end of each sentence.
Example answer: The bridge was designed by Ana Ruiz [2].
If the passages do not contain the answer, reply exactly: The articles do not say."""


class LLMUnavailable(CiteqaError):
    """The configured LLM could not be reached or did not answer in time."""

    status = 503
    code = "llm_unavailable"


def chat_model_from(settings: Settings) -> BaseChatModel | None:
    """The chat model `CITEQA_LLM` names, or None for extractive answers."""
    spec = (settings.llm or "none").strip()
    if spec.lower() == "none":
        return None
    provider, _, model = spec.partition(":")
    if not model:
        raise ConfigurationError(
            f"CITEQA_LLM={spec!r} names no model: use none, openai:<model> or ollama:<model>",
            code="invalid_llm")
    from langchain.chat_models import init_chat_model

    options: dict[str, Any] = {"temperature": 0.0}
    if provider == "openai":
        options.update(api_key=settings.llm_api_key or "not-needed",
                       timeout=settings.llm_timeout, max_retries=settings.llm_retries)
        if settings.llm_base_url:
            options["base_url"] = settings.llm_base_url
            # Self-hosted OpenAI-compatible servers (llama.cpp's Python server among them)
            # read `max_tokens` and ignore OpenAI's newer `max_completion_tokens`, which
            # langchain-openai sends: unbounded, a small model can ramble for minutes.
            options["extra_body"] = {"max_tokens": settings.llm_max_tokens}
        else:
            options["max_tokens"] = settings.llm_max_tokens
    elif provider == "ollama":
        if settings.llm_base_url:
            options["base_url"] = settings.llm_base_url
        options["client_kwargs"] = {"timeout": settings.llm_timeout}
        options["num_predict"] = settings.llm_max_tokens
    try:
        model_object: BaseChatModel = init_chat_model(f"{provider}:{model}", **options)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot use CITEQA_LLM={spec!r}: {exc}",
                                 code="invalid_llm") from exc
    return model_object


@dataclass(frozen=True)
class Prompt:
    """The messages sent to the model, and the passages they number."""

    messages: list[BaseMessage]
    passages: list[Candidate]


def build_prompt(question: str, candidates: Sequence[Candidate], *, passages: int,
                 history: Sequence[Turn] = ()) -> Prompt:
    """System instructions with the numbered passages, the conversation, then the question."""
    chosen = list(candidates[:passages])
    numbered = "\n\n".join(
        f"[{n}] {c.record.document.title}\n{c.record.text}" for n, c in enumerate(chosen, 1))
    messages: list[BaseMessage] = [SystemMessage(f"{SYSTEM_PROMPT}\n\nPassages:\n\n{numbered}")]
    for turn in history[-6:]:
        messages.append(HumanMessage(turn.content) if turn.role == "user"
                        else AIMessage(turn.content))
    messages.append(HumanMessage(question))
    return Prompt(messages, chosen)


def generate(model: BaseChatModel, prompt: Prompt,
             on_token: Callable[[str], None] | None = None) -> str:
    """The model's answer text, streamed to `on_token` as it comes when given one.

    `LLMUnavailable` when the model cannot be reached or fails.
    """
    try:
        if on_token is None:
            return _text(model.invoke(prompt.messages).content).strip()
        pieces = []
        for chunk in model.stream(prompt.messages):
            piece = _text(chunk.content)
            if piece:
                pieces.append(piece)
                on_token(piece)
        return "".join(pieces).strip()
    # Every provider raises its own exception types; any of them means "no answer".
    except Exception as exc:
        raise LLMUnavailable(
            f"the LLM did not answer ({type(exc).__name__}: {exc}); check CITEQA_LLM and "
            "CITEQA_LLM_BASE_URL, or set CITEQA_LLM_FALLBACK=extractive") from exc


def _text(content: str | list[str | dict[str, Any]]) -> str:
    if isinstance(content, list):
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       for part in content)
    return str(content)
