"""A LangChain retriever over citeqa's hybrid retrieval, in this process or over HTTP."""

from __future__ import annotations

import asyncio
from typing import Self

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator, model_validator

from citeqa_client.retriever import (
    CiteqaClientError,
    CiteqaHttpRetriever,
    count,
    passage_document,
    server_url,
)
from core.errors import CiteqaError, InvalidInput
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

    The remote mode is `citeqa_client.CiteqaHttpRetriever`, the light client: an application
    that only calls a server needs that alone (httpx and langchain-core, no model).

    `k` is the default number of passages; `invoke(query, k=2)` asks for another number for
    that call only (1 to 100). Either way it is a LangChain runnable, so it composes with LCEL::

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
        return None if value is None else server_url(value)

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

    # LangChain passes invoke's keyword arguments on: `invoke(query, k=2)` asks for two.

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        wanted = _count(k, self.k)
        if self.assistant is not None:
            return self._search_local(self.assistant, query, wanted)
        try:
            return self._remote().search(query, wanted)
        except CiteqaClientError as exc:
            raise _remote_error(exc) from exc

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        wanted = _count(k, self.k)
        if self.assistant is not None:
            return await asyncio.to_thread(self._search_local, self.assistant, query, wanted)
        try:
            return await self._remote().asearch(query, wanted)
        except CiteqaClientError as exc:
            raise _remote_error(exc) from exc

    # Local -----------------------------------------------------------------------------------

    def _search_local(self, assistant: Assistant, query: str, k: int) -> list[Document]:
        name = assistant.options.collection_for(self.collection)
        # Each passage carries its document's url: no document is read again for it.
        found = assistant.search(query, collection=name, top_k=k)
        return [passage_document(passage.model_dump()) for passage in found]

    # Remote: the light client's HTTP code, so there is one ---------------------------------

    def _remote(self) -> CiteqaHttpRetriever:
        assert self.base_url is not None  # the validator saw to it
        return CiteqaHttpRetriever(base_url=self.base_url, api_key=self.api_key,
                                   collection=self.collection, k=self.k,
                                   timeout=self.timeout)


def _count(k: int | None, default: int) -> int:
    try:
        return count(k, default)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_k") from exc


def _remote_error(exc: CiteqaClientError) -> RemoteSearchError:
    return RemoteSearchError(exc.detail, code=exc.code, status=exc.status)
