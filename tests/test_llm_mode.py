"""LLM mode with scripted chat models: every generated sentence is checked against the passage
it cites. (A real local LLM is exercised by `make test-llm`.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from citeqa import Citeqa
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app
from tests.conftest import LAB_DOC, canned_json_server

QUESTION = "Who co-leads the lab?"


class DownChatModel(BaseChatModel):
    """A chat model whose server is down."""

    @property
    def _llm_type(self) -> str:
        return "down"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        raise ConnectionError("connection refused")


def _services(settings: Settings, embedder: SentenceTransformerEmbedder,
              *replies: str, **overrides: Any) -> Citeqa:
    model = FakeListChatModel(responses=list(replies))
    return Citeqa.build(settings.model_copy(update={"llm": "openai:fake", **overrides}),
                          embedder=embedder, chat_model=model)


def _text(services: Citeqa, doc_id: str) -> str:
    return services.store.collection("articles").document(doc_id).document.text


@pytest.mark.parametrize("evidence", ["sentences", "passages"])
def test_supported_sentences_are_kept_with_exact_spans(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder, evidence: str) -> None:
    services = _services(sample_settings, embedder,
                         "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. "
                         "Verhoeven is the chief scientist of Corvalis Systems [1].",
                         llm_evidence=evidence)
    answer = services.assistant.ask(QUESTION)
    assert answer.mode == "llm" and not answer.abstained
    assert answer.answer == ("The lab is co-led by Miriam Okafor and Tomas Verhoeven. [1] "
                             "Verhoeven is the chief scientist of Corvalis Systems. [2]")
    assert [c.doc_id for c in answer.citations] == [LAB_DOC, LAB_DOC]
    for citation in answer.citations:
        assert _text(services, citation.doc_id)[citation.start:citation.end] == citation.quote
    assert "co-led by Dr. Miriam Okafor" in answer.citations[0].quote
    assert answer.unsupported == []


def test_an_invented_sentence_is_dropped_and_reported_with_its_score(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    services = _services(sample_settings, embedder,
                         "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. "
                         "The lab also runs a second site in Tokyo [1].")
    answer = services.assistant.ask(QUESTION)
    assert "Tokyo" not in answer.answer
    (dropped,) = answer.unsupported
    assert "Tokyo" in dropped.text and dropped.cited == [1]
    assert 0 < dropped.score < 0.55
    assert "Tokyo" in dropped.reason or "does not say" in dropped.reason


def test_flag_mode_keeps_the_sentence_marked(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    services = _services(sample_settings, embedder,
                         "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. "
                         "The lab also runs a second site in Tokyo [1].", unsupported="flag")
    answer = services.assistant.ask(QUESTION)
    assert "second site in Tokyo. [unsupported]" in answer.answer
    assert len(answer.citations) == 1 and len(answer.unsupported) == 1


@pytest.mark.parametrize(("reply", "reason"), [
    ("The lab is co-led by Miriam Okafor and Tomas Verhoeven.", "cites no passage"),
    ("The lab is co-led by Miriam Okafor and Tomas Verhoeven [9].", "cites no passage"),
    ("The partners committed 60 million euros to the lab [1].", "60"),
])
def test_sentences_without_a_valid_citation_or_with_other_numbers_are_rejected(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder, reply: str,
        reason: str) -> None:
    services = _services(sample_settings, embedder, reply)
    answer = services.assistant.ask(QUESTION)
    assert answer.unsupported and reason in answer.unsupported[0].reason
    # Nothing generated survived: the extractive answer stands in.
    assert "Tomas Verhoeven" in answer.answer
    assert answer.citations[0].doc_id == LAB_DOC


@pytest.mark.parametrize("reply", [
    "The lab is co-led by Miriam Okafor and Tomas Verhoeven.",
    "The lab is co-led by Miriam Okafor and Tomas Verhoeven [9].",
])
def test_attribution_cites_an_unmarked_sentence_to_the_passage_that_supports_it(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder, reply: str) -> None:
    services = _services(sample_settings, embedder, reply, llm_citations="attribute")
    answer = services.assistant.ask(QUESTION)
    assert answer.mode == "llm" and answer.unsupported == []
    (citation,) = answer.citations
    assert citation.attributed and citation.doc_id == LAB_DOC
    assert _text(services, LAB_DOC)[citation.start:citation.end] == citation.quote
    assert "co-led by Dr. Miriam Okafor" in citation.quote


def test_attribution_still_drops_what_no_passage_supports(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    services = _services(sample_settings, embedder,
                         "The lab is co-led by Miriam Okafor and Tomas Verhoeven. "
                         "The lab also runs a second site in Tokyo.",
                         llm_citations="attribute")
    answer = services.assistant.ask(QUESTION)
    assert "Tokyo" not in answer.answer and len(answer.citations) == 1
    (dropped,) = answer.unsupported
    assert "Tokyo" in dropped.text


def test_generation_is_bounded_on_openai_compatible_servers(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    # A loopback OpenAI-compatible server: what the real client sends is recorded.
    completion = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "length", "message": {
            "role": "assistant",
            "content": "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]."}}]}
    with canned_json_server(200, completion) as (base, received):
        settings = sample_settings.model_copy(update={
            "llm": "openai:m", "llm_max_tokens": 40, "llm_retries": 0,
            "llm_base_url": f"{base}/v1"})
        answer = Citeqa.build(settings, embedder=embedder).assistant.ask(QUESTION)
    assert answer.mode == "llm"
    # `max_tokens`, the name self-hosted servers read (llama.cpp ignores the newer one).
    assert received[0][1]["max_tokens"] == 40  # type: ignore[index]


def test_llm_down_falls_back_to_the_extractive_answer(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    services = Citeqa.build(sample_settings.model_copy(update={"llm": "openai:down"}),
                              embedder=embedder, chat_model=DownChatModel())
    answer = services.assistant.ask(QUESTION)
    assert answer.mode == "llm-fallback"
    assert "Tomas Verhoeven" in answer.answer


def test_llm_down_without_fallback_is_a_503(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    settings = sample_settings.model_copy(update={"llm": "openai:down",
                                                  "llm_fallback": "error"})
    app = create_app(settings, embedder=embedder)
    app.state.citeqa = Citeqa.build(settings, embedder=embedder,
                                        chat_model=DownChatModel())
    with TestClient(app) as client:
        response = client.post("/v1/ask", json={"question": QUESTION})
    assert response.status_code == 503
    assert response.json()["error"] == "llm_unavailable"


def test_eval_reports_the_share_of_generated_sentences_dropped(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Any) -> None:
    from qa.evaluation import EvalQuestion, score_answer, summarize

    services = _services(sample_settings, embedder,
                         "The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. "
                         "The lab also runs a second site in Tokyo [1].")
    answer = services.assistant.ask(QUESTION)
    result = score_answer(EvalQuestion("q1", QUESTION, [LAB_DOC], ["Tomas Verhoeven"]), answer)
    summary = summarize([result])
    assert summary["generated_sentences"] == 2
    assert summary["generated_dropped_share"] == 0.5
    assert summary["answer_containment"] == 1.0


def test_tokens_stream_and_the_checked_answer_comes_last(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    generated = ("The lab is co-led by Miriam Okafor and Tomas Verhoeven [1]. "
                 "The lab also runs a second site in Tokyo [1].")
    settings = sample_settings.model_copy(update={"llm": "openai:fake"})
    app = create_app(settings, embedder=embedder)
    app.state.citeqa = Citeqa.build(
        settings, embedder=embedder, chat_model=FakeListChatModel(responses=[generated]))
    with TestClient(app) as client, client.stream(
            "POST", "/v1/ask/stream", json={"question": QUESTION}) as response:
        body = response.read().decode()
    events = [(block.split("\n")[0].removeprefix("event: "),
               json.loads(block.split("\n")[1].removeprefix("data: ")))
              for block in body.strip().split("\n\n")]
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 10 and "".join(deltas) == generated
    name, final = events[-1]
    assert name == "answer" and final["mode"] == "llm"
    assert "Tokyo" not in final["answer"] and "Tokyo" in final["unsupported"][0]["text"]
