"""A LangChain retriever over citeqa's hybrid retrieval, in this process or over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any, Self

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator, model_validator

from core.errors import CiteqaError, NotFound
from qa.answer import Passage
from qa.pipeline import Assistant


class RemoteSearchError(CiteqaError):
    """A citeqa server refused a search, or could not be reached.

    `status` and `code` are the server's (503 `citeqa_unreachable` when there was no answer);
    the message includes the server's `detail`.
    """

    status = 502
    code = "remote_search_failed"


class CiteqaRetriever(BaseRetriever):
    """citeqa's hybrid retrieval (dense + sentence + BM25, fused and reranked) for LangChain.

    Each result is a `Document` whose `page_content` is one retrieved passage and whose
    `metadata` cites it exactly: `doc_id`, `title`, `chunk_id`, `start`, `end` (character
    offsets into the full document, so `document.text[start:end] == page_content`), `score`
    and, when the document has one, `url`. Results are best first.

    Build it one of two ways; exactly one of `assistant` and `base_url` must be given.

    In this process, over a data folder (no server needed)::

        from qa.langchain_retriever import CiteqaRetriever
        from citeqa import Citeqa
        from core.settings import Settings

        services = Citeqa.build(Settings())
        retriever = CiteqaRetriever(assistant=services.assistant, collection="articles", k=5)
        docs = retriever.invoke("Who co-leads the lab?")

    Against a running `citeqa serve` (calls `POST {base_url}/v1/search`; `api_key` is sent
    as `Authorization: Bearer <api_key>` when given)::

        retriever = CiteqaRetriever(base_url="http://127.0.0.1:8000", api_key=None,
                                    collection="articles", k=5, timeout=30.0)
        docs = await retriever.ainvoke("Who co-leads the lab?")

    Either way it is a LangChain runnable, so it composes with LCEL::

        chain = {"context": retriever | format_docs, "question": RunnablePassthrough()} | prompt

    Errors are `CiteqaError`s: locally the same ones `Assistant.search` raises (`NotFound` for
    an unknown collection, `InvalidInput` for an empty query...), remotely a
    `RemoteSearchError` carrying the server's status, code and detail.
    """

    assistant: Assistant | None = Field(
        default=None, description="Search in this process with this assistant.")
    base_url: str | None = Field(
        default=None, description="Or search a running citeqa server, e.g. http://127.0.0.1:8000.")
    api_key: str | None = Field(
        default=None, repr=False, exclude=True,
        description="API key for the server (remote mode), sent as a bearer token.")
    collection: str | None = Field(
        default=None, description="Collection to search (default: the server's, `articles`).")
    k: int = Field(default=5, ge=1, le=100, description="Passages to return.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request (remote).")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must be the server's http(s) address, like http://127.0.0.1:8000; "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.assistant is None and self.base_url is None:
            raise ValueError(
                "CiteqaRetriever needs somewhere to search: pass assistant=<qa.pipeline."
                "Assistant> to search in this process, or base_url='http://127.0.0.1:8000' to "
                "call a running `citeqa serve`"
            )
        if self.assistant is not None and self.base_url is not None:
            raise ValueError(
                "CiteqaRetriever got both assistant and base_url: pass only one — assistant "
                "to search in this process, or base_url to call a citeqa server"
            )
        return self

    # LangChain -------------------------------------------------------------------------------

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.assistant is not None:
            return self._search_local(self.assistant, query)
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(self._endpoint(), json=self._body(query),
                                       headers=self._headers())
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._documents(response)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.assistant is not None:
            return await asyncio.to_thread(self._search_local, self.assistant, query)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self._endpoint(), json=self._body(query),
                                             headers=self._headers())
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._documents(response)

    # Local -----------------------------------------------------------------------------------

    def _search_local(self, assistant: Assistant, query: str) -> list[Document]:
        name = assistant.options.collection_for(self.collection)
        found = assistant.search(query, collection=name, top_k=self.k)
        collection = assistant.store.collection(name)
        urls: dict[str, str | None] = {}
        for doc_id in {passage.doc_id for passage in found}:
            try:
                urls[doc_id] = collection.document(doc_id).document.url
            except NotFound:  # deleted since it was retrieved
                urls[doc_id] = None
        return [_document(passage, urls[passage.doc_id]) for passage in found]

    # Remote ----------------------------------------------------------------------------------

    def _endpoint(self) -> str:
        return f"{self.base_url}/v1/search"

    def _body(self, query: str) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "top_k": self.k}
        if self.collection is not None:
            body["collection"] = self.collection
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _unreachable(self, exc: httpx.HTTPError) -> RemoteSearchError:
        return RemoteSearchError(
            f"cannot reach citeqa at {self.base_url}: {exc or type(exc).__name__}",
            code="citeqa_unreachable", status=503,
        )

    def _documents(self, response: httpx.Response) -> list[Document]:
        if not response.is_success:
            code, detail = _error_of(response)
            raise RemoteSearchError(
                f"citeqa search at {self._endpoint()} failed with HTTP "
                f"{response.status_code} ({code}): {detail}",
                code=code, status=response.status_code,
            )
        try:
            found = [(Passage.model_validate(item), item.get("url"))
                     for item in response.json()["passages"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RemoteSearchError(
                f"{self._endpoint()} did not answer with citeqa search results; is "
                f"{self.base_url} a citeqa server? ({exc})",
                code="bad_remote_response",
            ) from exc
        return [_document(passage, url) for passage, url in found]


def _document(passage: Passage, url: str | None) -> Document:
    metadata: dict[str, Any] = {
        "doc_id": passage.doc_id,
        "title": passage.title,
        "chunk_id": passage.chunk_id,
        "start": passage.start,
        "end": passage.end,
        "score": passage.score,
    }
    if url is not None:
        metadata["url"] = url
    return Document(id=passage.chunk_id, page_content=passage.text, metadata=metadata)


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The `{"error", "detail"}` of a citeqa error response, or the best stand-in."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body.get("error") or "http_error"), body["detail"]
    text = " ".join(response.text.split())[:500]
    return "http_error", text or response.reason_phrase or "no detail"
