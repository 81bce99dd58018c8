"""Retrieval without an answer: `Assistant.search`, `POST /v1/search`, the LangChain retriever."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LAB_DOC, canned_json_server
from fastapi.testclient import TestClient
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from citeqa import Citeqa
from citeqa_client import CiteqaClientError, CiteqaHttpRetriever
from core.errors import CiteqaError, InvalidInput, NotFound
from qa.langchain_retriever import CiteqaRetriever, RemoteSearchError

LAB_QUESTION = "Who co-leads the lab?"
CYCLING_QUESTION = "Who won the Tour of the Carpathian Ridge?"
META_KEYS = {"doc_id", "title", "chunk_id", "start", "end", "score"}


def search(client: TestClient, query: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/search", json={"query": query, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def spans(documents: list[Document]) -> list[tuple[str, str, int, int, str]]:
    return [(d.metadata["doc_id"], d.metadata["chunk_id"], d.metadata["start"],
             d.metadata["end"], d.page_content) for d in documents]


def format_docs(documents: list[Document]) -> str:
    return "\n\n".join(f"[{n}] {d.metadata['title']} ({d.metadata['doc_id']}, "
                       f"{d.metadata['start']}-{d.metadata['end']}): {d.page_content}"
                       for n, d in enumerate(documents, start=1))


# Assistant.search and the local retriever ------------------------------------------------------


def test_assistant_search_returns_the_passages_ask_shows(sample_services: Citeqa) -> None:
    assistant = sample_services.assistant
    found = assistant.search(LAB_QUESTION, top_k=3)
    answer = assistant.ask(LAB_QUESTION, top_k=3)

    assert found == answer.passages
    assert found[0].doc_id == LAB_DOC


@pytest.mark.parametrize("query", ["", "   "])
def test_assistant_search_refuses_an_empty_query(sample_services: Citeqa, query: str) -> None:
    with pytest.raises(InvalidInput):
        sample_services.assistant.search(query)


def test_local_retriever_cites_exact_spans(sample_services: Citeqa) -> None:
    retriever = CiteqaRetriever(assistant=sample_services.assistant, collection="articles", k=4)
    documents = retriever.invoke(LAB_QUESTION)

    assert len(documents) == 4
    assert documents[0].metadata["doc_id"] == LAB_DOC
    assert "Miriam Okafor" in documents[0].page_content
    collection = sample_services.store.collection("articles")
    for document in documents:
        meta = document.metadata
        assert set(meta) == META_KEYS  # no url: the sample articles have none
        assert document.id == meta["chunk_id"]
        text = collection.document(meta["doc_id"]).document.text
        assert text[meta["start"]:meta["end"]] == document.page_content
    scores = [d.metadata["score"] for d in documents]
    assert scores == sorted(scores, reverse=True)


def test_local_retriever_async_matches_sync(sample_services: Citeqa) -> None:
    retriever = CiteqaRetriever(assistant=sample_services.assistant, k=3)

    assert spans(asyncio.run(retriever.ainvoke(LAB_QUESTION))) == spans(
        retriever.invoke(LAB_QUESTION))


def test_local_retriever_raises_citeqa_errors(sample_services: Citeqa) -> None:
    with pytest.raises(NotFound, match="no-such-collection"):
        CiteqaRetriever(assistant=sample_services.assistant,
                        collection="no-such-collection").invoke(LAB_QUESTION)
    with pytest.raises(InvalidInput):
        CiteqaRetriever(assistant=sample_services.assistant).invoke("  ")


def test_retriever_in_an_lcel_chain_puts_the_cited_passage_in_the_prompt(
        sample_services: Citeqa) -> None:
    retriever = CiteqaRetriever(assistant=sample_services.assistant, k=2)
    prompt = RunnableLambda(
        lambda x: f"Answer from the context only.\n\nContext:\n{x['context']}\n\n"
                  f"Question: {x['question']}")
    chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt

    text = chain.invoke(LAB_QUESTION)

    assert isinstance(text, str)
    assert text.endswith(f"Question: {LAB_QUESTION}")
    best = retriever.invoke(LAB_QUESTION)[0]
    assert best.page_content in text
    assert f"[1] {best.metadata['title']} ({LAB_DOC}, " in text
    assert "Tomas Verhoeven" in text


# POST /v1/search ------------------------------------------------------------------------------


def test_search_returns_passages_with_exact_spans(client: TestClient) -> None:
    result = search(client, f"  {LAB_QUESTION}  ", top_k=3)

    assert result["query"] == LAB_QUESTION
    assert result["collection"] == "articles"
    passages = result["passages"]
    assert len(passages) == 3
    assert passages[0]["doc_id"] == LAB_DOC
    for passage in passages:
        text = client.get(f"/v1/documents/{passage['doc_id']}").json()["text"]
        assert text[passage["start"]:passage["end"]] == passage["text"]
        assert passage["url"] is None
    # The same passages /v1/ask shows beside its answer.
    asked = client.post("/v1/ask", json={"question": LAB_QUESTION, "top_k": 3}).json()
    assert passages == asked["passages"]


def test_search_filters_keep_retrieval_to_the_document(client: TestClient) -> None:
    result = search(client, LAB_QUESTION, filters={"doc_ids": ["carpathian-ridge-cycling.md"]})

    assert result["passages"]
    assert {p["doc_id"] for p in result["passages"]} == {"carpathian-ridge-cycling.md"}


def test_search_passages_carry_the_document_url(client: TestClient) -> None:
    url = "https://example.org/kestrel"
    added = client.post("/v1/documents", json={"documents": [
        {"id": "kestrel-1", "title": "Kestrel Point Lighthouse", "url": url,
         "text": "Kestrel Point Lighthouse\n\nThe keeper of the Kestrel Point Lighthouse is "
                 "Ingrid Solvang, who has tended the light since 2009.\n"},
    ]})
    assert added.status_code == 200, added.text
    question = "Who is the keeper of the Kestrel Point Lighthouse?"

    passage = search(client, question, top_k=1)["passages"][0]
    assert (passage["doc_id"], passage["url"]) == ("kestrel-1", url)
    services: Citeqa = client.app.state.citeqa
    document = CiteqaRetriever(assistant=services.assistant, k=1).invoke(question)[0]
    assert document.metadata["url"] == url


@pytest.mark.parametrize("query", ["", "   "])
def test_search_with_an_empty_query_is_a_400(client: TestClient, query: str) -> None:
    response = client.post("/v1/search", json={"query": query})

    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error", "detail"}


def test_search_of_an_unknown_collection_is_a_404(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": LAB_QUESTION, "collection": "nope"})

    assert response.status_code == 404, response.text
    assert response.json()["error"] == "collection_not_found"


@pytest.mark.parametrize("top_k", [0, 101])
def test_search_top_k_out_of_range_is_a_422(client: TestClient, top_k: int) -> None:
    response = client.post("/v1/search", json={"query": LAB_QUESTION, "top_k": top_k})

    assert response.status_code == 422, response.text


def test_openapi_documents_search(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/search"]["post"]

    assert operation["tags"] == ["search"]
    assert {"200", "400", "404", "413", "422"} <= set(operation["responses"])


# The remote retriever -------------------------------------------------------------------------


def test_remote_retriever_returns_what_the_local_one_does(
        live_server: str, sample_services: Citeqa) -> None:
    local = CiteqaRetriever(assistant=sample_services.assistant, k=4)
    remote = CiteqaRetriever(base_url=live_server + "/", collection="articles", k=4)

    for question in (LAB_QUESTION, CYCLING_QUESTION):
        expected = spans(local.invoke(question))
        assert spans(remote.invoke(question)) == expected
        assert spans(asyncio.run(remote.ainvoke(question))) == expected
    assert remote.invoke(LAB_QUESTION)[0].metadata["doc_id"] == LAB_DOC
    assert set(remote.invoke(CYCLING_QUESTION)[0].metadata) == META_KEYS


def test_remote_retriever_reports_the_servers_detail(live_server: str) -> None:
    remote = CiteqaRetriever(base_url=live_server, collection="no-such-collection")

    with pytest.raises(RemoteSearchError, match="no-such-collection") as raised:
        remote.invoke(LAB_QUESTION)
    assert raised.value.status == 404
    assert raised.value.code == "collection_not_found"
    assert "does not exist" in str(raised.value)
    with pytest.raises(RemoteSearchError, match="404"):
        asyncio.run(remote.ainvoke(LAB_QUESTION))


def test_remote_retriever_sends_the_api_key_and_reports_refusals() -> None:
    refusal = {"error": "invalid_api_key", "detail": "wrong API key"}
    with canned_json_server(401, refusal) as (base, received):
        with pytest.raises(RemoteSearchError, match="wrong API key") as raised:
            CiteqaRetriever(base_url=base, api_key="s3cret").invoke(LAB_QUESTION)
        assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")
        with pytest.raises(RemoteSearchError):
            CiteqaRetriever(base_url=base).invoke(LAB_QUESTION)
    assert [headers.get("Authorization") for headers, _ in received] == ["Bearer s3cret", None]


def test_remote_retriever_that_cannot_connect_says_where() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    remote = CiteqaRetriever(base_url=f"http://127.0.0.1:{port}", timeout=5)

    with pytest.raises(RemoteSearchError, match=f"cannot reach citeqa at http://127.0.0.1:{port}"):
        remote.invoke(LAB_QUESTION)


# Construction ---------------------------------------------------------------------------------


def test_retriever_needs_an_assistant_or_a_base_url() -> None:
    with pytest.raises(ValueError, match=r"pass assistant=.*or base_url="):
        CiteqaRetriever()


def test_retriever_refuses_both_an_assistant_and_a_base_url(sample_services: Citeqa) -> None:
    with pytest.raises(ValueError, match="pass only one"):
        CiteqaRetriever(assistant=sample_services.assistant, base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize("kwargs", [{"base_url": "127.0.0.1:8000"}, {"base_url": "x", "k": 1},
                                    {"base_url": "http://127.0.0.1:8000", "k": 0},
                                    {"base_url": "http://127.0.0.1:8000", "timeout": 0}])
def test_retriever_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CiteqaRetriever(**kwargs)


def test_retriever_hides_the_api_key() -> None:
    retriever = CiteqaRetriever(base_url="http://127.0.0.1:8000", api_key="s3cret")

    assert "s3cret" not in repr(retriever)
    assert "s3cret" not in json.dumps(retriever.model_dump(exclude={"assistant"}), default=str)
    assert isinstance(RemoteSearchError("x"), CiteqaError)


# k per call, and LangChain's standard retriever tests ---------------------------------------


def test_invoke_k_overrides_the_retrievers_k_for_that_call(sample_services: Citeqa) -> None:
    retriever = CiteqaRetriever(assistant=sample_services.assistant, k=5)

    one = retriever.invoke(LAB_QUESTION, k=1)
    assert len(one) == 1
    assert one[0].metadata["doc_id"] == LAB_DOC
    assert len(asyncio.run(retriever.ainvoke(LAB_QUESTION, k=2))) == 2
    assert len(retriever.invoke(LAB_QUESTION)) == 5  # the call's k did not stick
    with pytest.raises(InvalidInput, match="k must be a whole number from 1 to 100"):
        retriever.invoke(LAB_QUESTION, k=0)


def test_remote_invoke_k_asks_the_server_for_that_many(live_server: str) -> None:
    for retriever in (CiteqaRetriever(base_url=live_server, k=5),
                      CiteqaHttpRetriever(base_url=live_server, k=5)):
        assert len(retriever.invoke(LAB_QUESTION, k=2)) == 2
        assert len(asyncio.run(retriever.ainvoke(LAB_QUESTION, k=1))) == 1
    with pytest.raises(ValueError, match="from 1 to 100"):
        CiteqaHttpRetriever(base_url=live_server).invoke(LAB_QUESTION, k=101)


class TestLocalRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard retriever suite, over the sample articles in this process."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture(autouse=True)
    def _sample_assistant(self, sample_services: Citeqa) -> None:
        self.assistant = sample_services.assistant

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return CiteqaRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"assistant": self.assistant, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return LAB_QUESTION


class TestHttpRetrieverStandard(RetrieversIntegrationTests):
    """The same suite for the light client, against a real `citeqa serve` on loopback."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture(autouse=True)
    def _server(self, live_server: str) -> None:
        self.base_url = live_server

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return CiteqaHttpRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return CYCLING_QUESTION


# The light client -------------------------------------------------------------------------

HEAVY = ("torch", "chromadb", "sentence_transformers", "numpy", "onnxruntime", "transformers",
         "core", "index", "qa", "citeqa", "server")


def test_the_light_client_imports_nothing_heavy() -> None:
    script = ("import sys\n"
              "from citeqa_client import CiteqaHttpRetriever\n"
              "CiteqaHttpRetriever(base_url='http://127.0.0.1:8000')\n"
              f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True, cwd=Path(__file__).resolve().parent.parent)

    assert ran.stdout.strip() == "", f"the client loaded {ran.stdout.strip()}"


def test_the_light_client_matches_the_server_side_retriever(
        live_server: str, sample_services: Citeqa) -> None:
    local = CiteqaRetriever(assistant=sample_services.assistant, k=3)
    client = CiteqaHttpRetriever(base_url=live_server, collection="articles", k=3)

    documents = client.invoke(LAB_QUESTION)
    assert spans(documents) == spans(local.invoke(LAB_QUESTION))
    for document in documents:
        meta = document.metadata
        text = httpx.get(f"{live_server}/v1/documents/{meta['doc_id']}").json()["text"]
        assert text[meta["start"]:meta["end"]] == document.page_content


def test_the_light_client_reports_the_servers_refusal() -> None:
    refusal = {"error": {"message": "wrong API key", "type": "invalid_request_error",
                         "param": None, "code": "invalid_api_key"}, "detail": "wrong API key"}
    with (canned_json_server(401, refusal) as (base, received),
          pytest.raises(CiteqaClientError, match="wrong API key") as raised):
        CiteqaHttpRetriever(base_url=base, api_key="s3cret", k=2).invoke(LAB_QUESTION)
    assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")
    headers, body = received[0]
    assert headers.get("Authorization") == "Bearer s3cret"
    assert body == {"query": LAB_QUESTION, "top_k": 2}


def test_the_light_client_needs_a_server_address() -> None:
    with pytest.raises(ValueError, match="http"):
        CiteqaHttpRetriever(base_url="127.0.0.1:8000")
    assert "s3cret" not in repr(CiteqaHttpRetriever(base_url="http://x", api_key="s3cret"))
