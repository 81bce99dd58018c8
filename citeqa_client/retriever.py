"""`CiteqaHttpRetriever`: `POST /v1/search` of a citeqa server as a LangChain retriever."""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

MAX_K = 100  # the server's limit on top_k
_METADATA = ("doc_id", "title", "chunk_id", "start", "end", "score")


class CiteqaClientError(Exception):
    """A citeqa server refused a search, or could not be reached.

    `status` and `code` are the server's (503 `citeqa_unreachable` when nothing answered,
    502 `bad_remote_response` when the answer was not citeqa's); `detail` is its message.
    """

    def __init__(self, detail: str, *, code: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


def count(k: int | None, default: int) -> int:
    """The number of passages to ask for: `k` when given, else `default`; 1 to 100."""
    wanted = default if k is None else k
    # bool is an int: k=True is a mistake, not 1.
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}; got {wanted!r}")
    return wanted


def server_url(value: str) -> str:
    """A citeqa server's base URL, without a trailing slash; anything but http(s) is refused."""
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError(
            f"base_url must be the server's http(s) address, like http://127.0.0.1:8000; "
            f"got {value!r}"
        )
    return value


def passage_document(passage: dict[str, Any]) -> Document:
    """A passage of citeqa's search (or `Passage.model_dump()`) as a cited `Document`."""
    metadata = {key: passage[key] for key in _METADATA}
    if passage.get("url") is not None:
        metadata["url"] = passage["url"]
    return Document(id=passage["chunk_id"], page_content=passage["text"], metadata=metadata)


class CiteqaHttpRetriever(BaseRetriever):
    """The passages a citeqa server retrieves for a query, best first, as LangChain documents.

    Each `Document` is one passage: `page_content` is its text and `metadata` cites it
    exactly: `doc_id`, `title`, `chunk_id`, `start`, `end` (character offsets into the full
    document: `GET /v1/documents/{doc_id}` text[start:end] == page_content), `score` and,
    when the document has one, `url`::

        retriever = CiteqaHttpRetriever(base_url="http://127.0.0.1:8000", k=5)
        docs = retriever.invoke("Who co-leads the lab?")
        docs = retriever.invoke("Who co-leads the lab?", k=2)  # this call only

    Errors are `CiteqaClientError`s carrying the server's status, code and detail.
    """

    base_url: str = Field(description="The server, e.g. http://127.0.0.1:8000.")
    api_key: str | None = Field(
        default=None, repr=False, exclude=True,
        description="API key (CITEQA_API_KEYS on the server), sent as a bearer token.")
    collection: str | None = Field(
        default=None, description="Collection to search (default: the server's, `articles`).")
    k: int = Field(default=5, ge=1, le=MAX_K, description="Passages to return.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return server_url(value)

    def search(self, query: str, k: int | None = None) -> list[Document]:
        """The passages for `query` (`k` of them, else the retriever's `k`), best first."""
        request = self._request(query, k)
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(**request)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._documents(response)

    async def asearch(self, query: str, k: int | None = None) -> list[Document]:
        """`search`, without blocking the event loop."""
        request = self._request(query, k)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(**request)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._documents(response)

    # LangChain passes invoke's keyword arguments on: `invoke(query, k=2)` asks for two.
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        return self.search(query, k)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        return await self.asearch(query, k)

    def _endpoint(self) -> str:
        return f"{self.base_url}/v1/search"

    def _request(self, query: str, k: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "top_k": count(k, self.k)}
        if self.collection is not None:
            body["collection"] = self.collection
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {"url": self._endpoint(), "json": body, "headers": headers}

    def _unreachable(self, exc: httpx.HTTPError) -> CiteqaClientError:
        return CiteqaClientError(
            f"cannot reach citeqa at {self.base_url}: {exc or type(exc).__name__}",
            code="citeqa_unreachable", status=503,
        )

    def _documents(self, response: httpx.Response) -> list[Document]:
        if not response.is_success:
            code, detail = error_of(response)
            raise CiteqaClientError(
                f"citeqa search at {self._endpoint()} failed with HTTP "
                f"{response.status_code} ({code}): {detail}",
                code=code, status=response.status_code,
            )
        try:
            return [passage_document(item) for item in response.json()["passages"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CiteqaClientError(
                f"{self._endpoint()} did not answer with citeqa search results; is "
                f"{self.base_url} a citeqa server? ({exc!r})",
                code="bad_remote_response", status=502,
            ) from exc


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The `{"error", "detail"}` of a citeqa error response, or the best stand-in."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # citeqa's {"error": code, "detail"}, or OpenAI's {"error": {"code", "message"}} (401s)
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else error
        detail = body.get("detail")
        if not isinstance(detail, str) and isinstance(error, dict):
            detail = error.get("message")
        if isinstance(detail, str):
            return str(code or "http_error"), detail
    text = " ".join(response.text.split())[:500]
    return "http_error", text or response.reason_phrase or "no detail"
