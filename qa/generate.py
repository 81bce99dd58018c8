"""Stage 4b — generated answers (LLM mode): an LLM writes from the numbered passages, then
every sentence is checked against the passage it cites (`qa.check`).

`GeneratingAnswerer` returns the same `Draft` as the extractive answerer, each kept sentence
resting on the span the check found; it is used when `CITEQA_LLM` names a chat model
(`openai:<model>`, `ollama:<model>`...). The extractive answerer stays the default and the
fallback: when the LLM is down, or when nothing it wrote survives the check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from core.errors import CiteqaError, ConfigurationError
from core.settings import Settings
from index.embedding import Embedder
from qa.answer import UnsupportedSentence
from qa.check import check_answer
from qa.draft import Answerer, AnswerSentence, Draft, TokenCallback
from qa.followup import Turn
from qa.question import Question
from qa.retrieve import Candidate

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """\
Answer the question from the numbered passages, in one or two short sentences. Copy the words \
of the passage. End each sentence with the number of the passage it comes from, in square \
brackets, like [1]. If the passages do not answer the question, reply: The articles do not say.\
"""
# A worked example: small models follow a shown answer far better than a described one.
EXAMPLE_QUESTION = """Passages:

[1] The Ember Bridge was finished in 1931 after four years of work.

[2] It was designed by the engineer Ana Ruiz, who later built two dams.

[3] The town council voted to repaint the bridge in 2024.

Question: Who designed the bridge?"""
EXAMPLE_ANSWER = "The Ember Bridge was designed by the engineer Ana Ruiz [2]."


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
    """The messages sent to the model, and the evidence they number ([1], [2]...): passages,
    or single sentences as their chunks (`CITEQA_LLM_EVIDENCE`)."""

    messages: list[BaseMessage]
    evidence: list[Candidate]


def build_prompt(question: str, candidates: Sequence[Candidate], *, passages: int,
                 history: Sequence[Turn] = (), query_vector: np.ndarray | None = None,
                 sentences: int | None = None) -> Prompt:
    """System instructions, a worked example, the conversation, then the numbered evidence.

    With `query_vector` and `sentences`, the evidence is the `sentences` sentences of the top
    `passages` passages closest to the question, each numbered on its own; otherwise it is
    the passages themselves.
    """
    chosen = list(candidates[:passages])
    if query_vector is not None and sentences:
        chosen = closest_sentences(chosen, query_vector, sentences)
        numbered = "\n\n".join(
            f"[{n}] {c.record.document.text[c.record.sentences[0].start:c.record.sentences[0].end]}"
            for n, c in enumerate(chosen, 1))
    else:
        numbered = "\n\n".join(f"[{n}] {c.record.document.title}\n{c.record.text}"
                                 for n, c in enumerate(chosen, 1))
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT),
                                   HumanMessage(EXAMPLE_QUESTION), AIMessage(EXAMPLE_ANSWER)]
    for turn in history[-6:]:
        messages.append(HumanMessage(turn.content) if turn.role == "user"
                        else AIMessage(turn.content))
    messages.append(HumanMessage(f"Passages:\n\n{numbered}\n\nQuestion: {question}"))
    return Prompt(messages, chosen)


def closest_sentences(candidates: Sequence[Candidate], query_vector: np.ndarray,
                      count: int) -> list[Candidate]:
    """The `count` sentences of the candidates closest to the question, best first, each as
    its chunk with only that sentence: the check compares a generated sentence with it, and
    looks for the names and numbers it states in the whole chunk."""
    scored = [(float(np.dot(sentence.vector, query_vector)), n, candidate, sentence)
              for n, candidate in enumerate(candidates)
              for sentence in candidate.record.sentences]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [replace(candidate, record=replace(candidate.record, sentences=(sentence,)))
            for _, _, candidate, sentence in scored[:count]]


class StopGenerating(Exception):
    """Raised by an `on_token` callback whose reader has gone: generation ends at once, and
    the model's stream (its HTTP request, for a remote model) is closed."""


def generate(model: BaseChatModel, prompt: Prompt,
             on_token: TokenCallback | None = None) -> str:
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
    except StopGenerating:
        raise
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


@dataclass(frozen=True)
class GenerationOptions:
    """What the generating answerer reads of the settings (`CITEQA_LLM_PASSAGES`,
    `_EVIDENCE`, `_SENTENCES`, `_FALLBACK`, `_CITATIONS` and `CITEQA_UNSUPPORTED`)."""

    passages: int = 5
    evidence: str = "sentences"
    sentences: int = 5
    fallback: str = "extractive"
    attribute: bool = False
    keep_unsupported: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationOptions:
        """The options as the settings give them."""
        return cls(passages=settings.llm_passages, evidence=settings.llm_evidence,
                   sentences=settings.llm_sentences, fallback=settings.llm_fallback,
                   attribute=settings.llm_citations == "attribute",
                   keep_unsupported=settings.unsupported == "flag")


class GeneratingAnswerer:
    """LLM mode: the model writes the answer; each sentence is kept only if the passage it
    cites (or, with attribution, another passage) supports it."""

    def __init__(self, *, chat_model: BaseChatModel, fallback: Answerer, embedder: Embedder,
                 options: GenerationOptions | None = None) -> None:
        self.chat_model = chat_model
        self.fallback = fallback
        self.embedder = embedder
        self.options = options or GenerationOptions()

    def answer(self, question: Question, candidates: list[Candidate],
               query_vector: np.ndarray, *, history: Sequence[Turn] = (),
               on_token: TokenCallback | None = None) -> Draft:
        """The checked answer; the extractive one when the LLM is down (unless fallback is
        `error`) or when nothing it wrote survives the check."""
        options = self.options
        by_sentence = options.evidence == "sentences"
        prompt = build_prompt(question.text, candidates, passages=options.passages,
                              history=history,
                              query_vector=query_vector if by_sentence else None,
                              sentences=options.sentences if by_sentence else None)
        try:
            generated = generate(self.chat_model, prompt, on_token)
        except LLMUnavailable:
            if options.fallback == "error":
                raise
            log.warning("LLM unavailable; answering extractively")
            return replace(self.fallback.answer(question, candidates, query_vector),
                           mode="llm-fallback")
        checked = check_answer(generated, prompt.evidence, embedder=self.embedder,
                               attribute=options.attribute)
        kept: list[AnswerSentence] = []
        rejected: list[UnsupportedSentence] = []
        flagged: list[tuple[int, str]] = []
        for sentence in checked.sentences:
            if sentence.supported and sentence.passage is not None:
                assert sentence.start is not None and sentence.end is not None
                kept.append(AnswerSentence(
                    candidate=prompt.evidence[sentence.passage - 1], start=sentence.start,
                    end=sentence.end, score=sentence.score, wording=sentence.text,
                    attributed=sentence.attributed))
            else:
                rejected.append(UnsupportedSentence(
                    text=sentence.text, cited=list(sentence.cited), score=sentence.score,
                    reason=sentence.reason))
                if options.keep_unsupported:
                    flagged.append((len(kept), sentence.text))
        if not kept:
            # Nothing generated survived the check: the extractive answer stands in.
            return replace(self.fallback.answer(question, candidates, query_vector),
                           mode="llm-extractive", rejected=rejected)
        return Draft(kept, mode="llm", rejected=rejected, flagged=flagged,
                     support=max(s.score for s in checked.supported))
