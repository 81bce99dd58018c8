"""`POST /v1/responses` (OpenAI's Responses API), driven by the real `openai` client and by
LangChain's `ChatOpenAI(use_responses_api=True)` against a real `citeqa serve` on loopback; the
annotation links are followed in a real Chromium."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import openai
import pytest

from tests.conftest import DESKTOP, LAB_DOC

QUESTION = "Who co-leads the lab?"


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    """The official client, pointed at citeqa (no key needed: the server has none)."""
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


def linked_passage(url: str) -> dict[str, str]:
    """What an annotation's link opens: the document, collection and span of its fragment."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).fragment).items()}


def document_text(base: str, doc_id: str) -> str:
    """The full text of a document, as the server stores it."""
    response = httpx.get(f"{base}/v1/documents/{doc_id}", timeout=30)
    response.raise_for_status()
    text: str = response.json()["text"]
    return text


def output_annotations(response: Any) -> list[dict[str, Any]]:
    """The annotations of a response's output text, as JSON."""
    annotations: list[dict[str, Any]] = (
        response.model_dump()["output"][0]["content"][0]["annotations"])
    return annotations


def assert_points_at_cited_passages(text: str, annotations: list[dict[str, Any]], base: str
                                    ) -> None:
    """Each annotation spans an [n] marker of the text, and its link opens the exact span
    of the document whose text it quotes."""
    assert annotations
    for annotation in annotations:
        assert annotation["type"] == "url_citation"
        assert text[annotation["start_index"]:annotation["end_index"]] == f"[{annotation['n']}]"
        link = linked_passage(annotation["url"])
        assert annotation["url"].startswith(f"{base}/#")
        assert link["source"] == annotation["doc_id"] and link["collection"] == "articles"
        start, end = int(link["start"]), int(link["end"])
        assert (start, end) == (annotation["start"], annotation["end"])
        assert document_text(base, link["source"])[start:end] == annotation["quote"]


def test_response_carries_the_citations_as_url_annotations(client: openai.OpenAI,
                                                          live_server: str) -> None:
    response = client.responses.create(model="citeqa", input=QUESTION, temperature=0.2)
    assert response.status == "completed"
    assert "Miriam Okafor" in response.output_text and "Tomas Verhoeven" in response.output_text
    [message] = response.output
    assert message.type == "message"
    [part] = message.content
    assert part.type == "output_text"
    annotations = [annotation.model_dump() for annotation in part.annotations]
    assert_points_at_cited_passages(part.text, annotations, live_server)
    assert annotations[0]["doc_id"] == LAB_DOC and annotations[0]["title"]
    # The whole citation objects come too, as in /v1/chat/completions.
    citations = response.model_dump()["citations"]
    assert citations[0]["quote"] == annotations[0]["quote"]
    assert response.usage is not None and response.usage.input_tokens == len(QUESTION.split())


def test_streamed_response_sends_the_responses_events(client: openai.OpenAI,
                                                      live_server: str) -> None:
    with client.responses.stream(model="citeqa:articles", input=QUESTION) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert kinds.count("response.output_text.delta") > 5
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == final.output_text
    assert "Tomas Verhoeven" in streamed
    added = [e.annotation.model_dump() for e in events
             if e.type == "response.output_text.annotation.added" and e.annotation is not None]
    assert_points_at_cited_passages(streamed, added, live_server)
    assert output_annotations(final) == added
    sequence = [event.sequence_number for event in events]
    assert sequence == list(range(len(events)))


def test_created_with_stream_true_gives_the_same_answer(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="citeqa", input=QUESTION, stream=True))
    completed = events[-1]
    assert completed.type == "response.completed"
    whole = client.responses.create(model="citeqa", input=QUESTION)
    assert completed.response.output_text == whole.output_text


def test_conversation_in_input_answers_the_follow_up(client: openai.OpenAI) -> None:
    first = client.responses.create(model="citeqa", input=QUESTION)
    follow_up = client.responses.create(model="citeqa", instructions="Be brief.", input=[
        {"role": "user", "content": QUESTION},
        # An earlier answer as the SDK hands it back: an output message, annotations and all.
        first.model_dump(exclude_none=True)["output"][0],
        {"role": "user", "content": [{"type": "input_text",
                                      "text": "What else does the second one do?"}]},
    ])
    assert "standards committee" in follow_up.output_text
    assert follow_up.model_dump()["citeqa"]["rewritten_question"] == (
        "What else does Tomas Verhoeven do?")


def test_sources_model_appends_a_numbered_list_with_quote_and_link(client: openai.OpenAI,
                                                                   live_server: str) -> None:
    plain = client.responses.create(model="citeqa", input=QUESTION)
    with_sources = client.responses.create(model="citeqa+sources", input=QUESTION)
    text = with_sources.output_text
    assert text.startswith(plain.output_text + "\n\nSources:\n")
    annotations = output_annotations(with_sources)
    # The annotations still point at the markers of the answer, before the list.
    assert_points_at_cited_passages(text, annotations, live_server)
    footer = text[len(plain.output_text):]
    for annotation in annotations:
        line = next(line for line in footer.splitlines()
                    if line.startswith(f"- [{annotation['n']}] "))
        assert annotation["title"] in line and annotation["quote"] in line
        assert f"<{annotation['url']}>" in line


def test_unanswerable_question_has_no_annotations_and_no_sources(client: openai.OpenAI
                                                                  ) -> None:
    response = client.responses.create(model="citeqa+sources",
                                       input="What is the capital of Australia?")
    assert response.model_dump()["citeqa"]["abstained"] is True
    assert output_annotations(response) == []
    assert "Sources:" not in response.output_text


def test_bad_requests_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="previous_response_id"):
        client.responses.create(model="citeqa", input=QUESTION, previous_response_id="resp_1")
    with pytest.raises(openai.BadRequestError, match="user's question"):
        client.responses.create(model="citeqa", input=[
            {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Hm."}])
    with pytest.raises(openai.NotFoundError, match="gpt-4o"):
        client.responses.create(model="gpt-4o", input=QUESTION)
    with pytest.raises(openai.NotFoundError, match="no-such-collection"):
        client.responses.create(model="citeqa:no-such-collection+sources", input=QUESTION)


def test_langchain_chat_openai_keeps_the_annotations(live_server: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{live_server}/v1", api_key="unused",  # type: ignore[arg-type]
                      model="citeqa", max_retries=0, use_responses_api=True)
    reply = chat.invoke(QUESTION)
    assert isinstance(reply.content, list)
    [block] = reply.content
    assert isinstance(block, dict) and "Tomas Verhoeven" in block["text"]
    assert_points_at_cited_passages(block["text"], block["annotations"], live_server)
    # LangChain's standard blocks keep the link and indexes, and citeqa's fields as extras.
    [standard] = [b for b in reply.content_blocks if b["type"] == "text"]
    citation = standard["annotations"][0]
    assert citation["type"] == "citation"
    assert citation["url"] == block["annotations"][0]["url"]
    assert citation["extras"]["quote"] == block["annotations"][0]["quote"]

    streamed = None
    for part in chat.stream(QUESTION):
        streamed = part if streamed is None else streamed + part
    assert streamed is not None
    [text_block] = [b for b in streamed.content if isinstance(b, dict) and b.get("text")]
    assert_points_at_cited_passages(text_block["text"], text_block["annotations"], live_server)


@pytest.mark.browser
def test_annotation_link_opens_the_cited_passage_on_the_page(browser: Any, client: openai.OpenAI
                                                             ) -> None:
    response = client.responses.create(model="citeqa", input=QUESTION)
    annotation = output_annotations(response)[0]
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(annotation["url"])
        highlight = page.get_by_test_id("source-highlight")
        highlight.wait_for(state="visible")
        assert highlight.inner_text() == annotation["quote"]
        assert annotation["title"] in page.get_by_test_id("source-title").inner_text()
        assert f"[{annotation['n']}]" in page.locator("#source-panel").inner_text()
    finally:
        context.close()
