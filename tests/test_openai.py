"""The OpenAI-compatible chat API, used by the real `openai` client and LangChain's ChatOpenAI
against a real `citeqa serve` on loopback (the Responses API: tests/test_responses.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LAB_DOC, copy_data_folder, serving
from tests.test_responses import assert_points_at_cited_passages

QUESTION = "Who co-leads the lab?"


@pytest.fixture(scope="module")
def client(live_server: str) -> openai.OpenAI:
    """The official client, pointed at citeqa (no key needed: the server has none)."""
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, _sample_data_template: Path
                 ) -> Iterator[str]:
    """A server that wants one of two API keys."""
    data_dir = tmp_path_factory.mktemp("keyed") / "data"
    copy_data_folder(_sample_data_template, data_dir)
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text("# team keys\nkey-from-file\n", encoding="utf-8")
    env = {"CITEQA_API_KEYS": "key-one, key-two", "CITEQA_API_KEYS_FILE": str(keys)}
    with serving(data_dir, env=env) as base:
        yield base


def _extra(model: Any, name: str) -> Any:
    return model.model_dump()[name]


def test_answer_names_both_co_leaders_with_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": QUESTION}], temperature=0.2,
        max_tokens=50)
    content = completion.choices[0].message.content or ""
    assert "Miriam Okafor" in content and "Tomas Verhoeven" in content
    assert "[1]" in content
    citations = _extra(completion, "citations")
    assert citations[0]["doc_id"] == LAB_DOC
    assert "Verhoeven" in citations[0]["quote"]
    assert completion.usage is not None
    assert completion.usage.total_tokens == (completion.usage.prompt_tokens
                                             + completion.usage.completion_tokens)
    assert completion.usage.prompt_tokens == len(QUESTION.split())


def test_streamed_answer_ends_with_the_citations(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="citeqa:articles", messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Miriam Okafor" in text and "Tomas Verhoeven" in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    citations = _extra(last, "citations")
    assert citations and citations[0]["doc_id"] == LAB_DOC
    assert len(chunks) > 5


def test_message_annotations_point_at_the_cited_passages(client: openai.OpenAI,
                                                         live_server: str) -> None:
    completion = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": QUESTION}])
    message = completion.choices[0].message
    assert message.annotations
    annotations = [{"type": a.type, **a.url_citation.model_dump()} for a in message.annotations]
    assert_points_at_cited_passages(message.content or "", annotations, live_server)
    assert [a["quote"] for a in annotations] == [
        c["quote"] for c in _extra(completion, "citations")]


def test_streamed_annotations_come_with_the_last_chunk(client: openai.OpenAI,
                                                       live_server: str) -> None:
    chunks = list(client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": QUESTION}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop"
    annotations = [{"type": a["type"], **a["url_citation"]}
                   for a in _extra(last.delta, "annotations")]
    assert_points_at_cited_passages(text, annotations, live_server)


def test_sources_model_ends_the_content_with_the_sources(client: openai.OpenAI,
                                                         live_server: str) -> None:
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    plain = client.chat.completions.create(model="citeqa", messages=messages)
    whole = client.chat.completions.create(model="citeqa+sources", messages=messages)
    stream = client.chat.completions.create(model="citeqa:articles+sources", messages=messages,
                                            stream=True)
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    content = whole.choices[0].message.content or ""
    assert streamed == content
    assert content.startswith((plain.choices[0].message.content or "") + "\n\nSources:\n- [1] ")
    citation = _extra(whole, "citations")[0]
    assert citation["quote"] in content and citation["title"] in content
    assert f"{live_server}/#source={LAB_DOC}&collection=articles" in content


def test_follow_up_uses_the_earlier_turns(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": QUESTION}])
    follow_up = client.chat.completions.create(model="citeqa", messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": [{"type": "text", "text": "What else does the second one "
                                                              "do?"}]},
    ])
    assert "standards committee" in (follow_up.choices[0].message.content or "")
    extras = _extra(follow_up, "citeqa")
    assert extras["rewritten_question"] == "What else does Tomas Verhoeven do?"


def test_unknown_collection_is_a_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="citeqa:no-such-collection",
                                       messages=[{"role": "user", "content": QUESTION}])
    assert "no-such-collection" in str(caught.value)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": QUESTION}])


def test_bad_requests_are_clear_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(model="citeqa", messages=[
            {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Hm."}])
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.chat.completions.create(model="citeqa",
                                       messages=[{"role": "user", "content": "  "}])


def test_models_are_listed_per_collection(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "citeqa" and "citeqa:articles" in ids
    assert "citeqa+sources" in ids and "citeqa:articles+sources" in ids


def test_api_keys_are_required_and_checked(keyed_server: str) -> None:
    for key in ("key-one", "key-two", "key-from-file"):
        good = openai.OpenAI(base_url=f"{keyed_server}/v1", api_key=key, max_retries=0)
        assert good.models.list().data
    bad = openai.OpenAI(base_url=f"{keyed_server}/v1", api_key="key-three", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="citeqa",
                                    messages=[{"role": "user", "content": QUESTION}])
    anonymous = httpx.post(f"{keyed_server}/v1/ask", json={"question": QUESTION})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{keyed_server}/v1/documents").status_code == 401
    assert httpx.get(f"{keyed_server}/healthz").status_code == 200
    assert httpx.get(f"{keyed_server}/").status_code == 200


def test_langchain_chat_openai_gets_the_answer_but_not_the_citations(live_server: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{live_server}/v1", api_key="unused",  # type: ignore[arg-type]
                      model="citeqa", max_retries=0)
    reply = chat.invoke(QUESTION)
    assert "Tomas Verhoeven" in str(reply.content)
    streamed = "".join(str(part.content) for part in chat.stream(QUESTION))
    assert "Tomas Verhoeven" in streamed
    # What the README says of chat-completions mode: ChatOpenAI copies only the fields it
    # knows, so the annotations and citations are gone (use_responses_api=True keeps them,
    # tests/test_responses.py) and only the [n] markers, or a +sources footer, remain.
    kept = repr((reply.content, reply.additional_kwargs, reply.response_metadata))
    assert "url_citation" not in kept and "quote" not in kept
    with_sources = ChatOpenAI(base_url=f"{live_server}/v1",
                              api_key="unused",  # type: ignore[arg-type]
                              model="citeqa+sources", max_retries=0).invoke(QUESTION)
    assert "Sources:" in str(with_sources.content)
