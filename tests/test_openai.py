"""The OpenAI-compatible API, used by the real `openai` client and LangChain's ChatOpenAI
against a real `citeqa serve` on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LAB_DOC, serving

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
    shutil.copytree(_sample_data_template, data_dir)
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


def test_langchain_chat_openai_gets_the_answer(live_server: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{live_server}/v1", api_key="unused",  # type: ignore[arg-type]
                      model="citeqa", max_retries=0)
    reply = chat.invoke(QUESTION)
    assert "Tomas Verhoeven" in str(reply.content)
    streamed = "".join(str(part.content) for part in chat.stream(QUESTION))
    assert "Tomas Verhoeven" in streamed
