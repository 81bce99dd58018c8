"""citeqa over the Model Context Protocol: `ask`, `search`, `verify`, `get_document` and
`list_collections` as MCP tools, for agents, IDEs and desktop assistants.

Two transports, one tool set: stdio (`citeqa mcp`, which a desktop assistant starts itself)
and streamable HTTP at `/mcp` in `citeqa serve`, behind the same API keys and Host and Origin
checks as the rest of the server. Every tool calls `Citeqa`; each returns structured content
(the same objects as the HTTP API) and a readable text with the exact spans it cites.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from citeqa import Citeqa
from citeqa_client.verify import verification_text
from core.errors import CiteqaError
from core.settings import Settings
from qa.answer import Answer
from qa.timeframe import as_of_date
from qa.verify import Verification
from server.errors import error_response
from server.schemas import (
    CollectionInfo,
    CollectionList,
    DocumentFull,
    SearchPassage,
    SearchResult,
)
from server.security import key_refusal

MCP_PATH = "/mcp"
INSTRUCTIONS = (
    "citeqa answers questions from a collection of articles and cites the exact passages it "
    "used: every citation and passage has a doc_id and character offsets start/end into that "
    "document's text (get_document), so text[start:end] is the quote. Use `ask` for an "
    "answer, `search` for the passages alone, `verify` to check any text (your own draft, "
    "another model's answer) sentence by sentence against the articles, `list_collections` "
    "to see what can be asked."
)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                             open_world_hint=False)

P = ParamSpec("P")
R = TypeVar("R")

Collection = Annotated[str | None, Field(
    description="Collection to use (default: the server's, usually `articles`).")]
TopK = Annotated[int | None, Field(
    ge=1, le=100, description="Passages to retrieve (default: the server's).")]


def _as_tool_errors(tool: Callable[P, R]) -> Callable[P, R]:
    """A `CiteqaError` reaches the client as a tool error with its code and detail (the SDK
    would hide an unknown exception's text behind a generic message)."""

    @functools.wraps(tool)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return tool(*args, **kwargs)
        except CiteqaError as exc:
            raise ToolError(f"{exc.code}: {exc.detail}") from exc

    return run


def _span(n: int, title: str, doc_id: str, start: int, end: int, text: str) -> str:
    return f'[{n}] {title} ({doc_id}, characters {start}-{end}): "{text}"'


def answer_text(answer: Answer) -> str:
    """The answer as a person reads it: the text, then each citation's exact span."""
    if answer.abstained or not answer.citations:
        return answer.answer
    sources = "\n".join(_span(c.n, c.title, c.doc_id, c.start, c.end, c.quote)
                        for c in answer.citations)
    return f"{answer.answer}\n\nSources:\n{sources}"


def search_text(result: SearchResult) -> str:
    """The passages found, best first, each with its document and offsets."""
    if not result.passages:
        return f"Nothing in {result.collection!r} matches {result.query!r}."
    return "\n\n".join(_span(n, p.title, p.doc_id, p.start, p.end, p.text)
                       for n, p in enumerate(result.passages, start=1))


def _result(text: str, structured: Any) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=structured.model_dump(mode="json"))


def build_server(citeqa: Callable[[], Citeqa]) -> MCPServer:
    """An MCP server whose tools call the `Citeqa` that `citeqa()` returns at call time."""
    server: MCPServer = MCPServer("citeqa", title="citeqa", instructions=INSTRUCTIONS)

    # Sync tools: the SDK runs them on a worker thread, so answering never blocks the loop.
    @server.tool(annotations=_READ_ONLY)
    @_as_tool_errors
    def ask(question: Annotated[str, Field(description="The question, in plain language.")],
            collection: Collection = None, top_k: TopK = None
            ) -> Annotated[CallToolResult, Answer]:
        """Answer a question from the articles. Each sentence of the answer ends with an [n]
        marker; citation n gives the document and the exact span (start/end character offsets
        into its text) that supports it. When the articles do not support an answer,
        `abstained` is true and there are no citations."""
        answer = citeqa().ask(question, collection=collection, top_k=top_k)
        return _result(answer_text(answer), answer)

    @server.tool(annotations=_READ_ONLY)
    @_as_tool_errors
    def search(query: Annotated[str, Field(description="What to look for, in plain language.")],
               collection: Collection = None, top_k: TopK = None
               ) -> Annotated[CallToolResult, SearchResult]:
        """The passages a question would be answered from, best first, without an answer:
        each with its document and exact span (text == document text[start:end])."""
        app = citeqa()
        name = app.collection_name(collection)
        found = app.search(query, collection=name, top_k=top_k)
        result = SearchResult(query=" ".join(query.split()), collection=name,
                              passages=[SearchPassage(**p.model_dump()) for p in found])
        return _result(search_text(result), result)

    @server.tool(annotations=_READ_ONLY)
    @_as_tool_errors
    def verify(text: Annotated[str, Field(description="The text to check: a draft, a summary, "
                                          "another model's answer...")],
               collection: Collection = None,
               as_of: Annotated[str | None, Field(
                   description="Check as of this date (YYYY-MM-DD; default today): documents "
                   "dated after it are not used as evidence.")] = None
               ) -> Annotated[CallToolResult, Verification]:
        """Check every sentence of a text against the articles. Each sentence gets a verdict:
        `supported` (evidence cites the exact span that says the same), `contradicted` (the
        passage it matches says otherwise: another name, number or date, or a negation;
        `reason` says what differs), `unsupported` (nothing in the collection states it) or
        `not_checkable` (a question, greeting, opinion). start/end of a sentence are offsets
        into the text sent; those of its evidence, into the document's text."""
        day = as_of_date(as_of) if as_of is not None else None
        result = citeqa().verify(text, collection=collection, as_of=day)
        return _result(verification_text(result.model_dump(mode="json")), result)

    @server.tool(annotations=_READ_ONLY)
    @_as_tool_errors
    def get_document(doc_id: Annotated[str, Field(description="The document's id (doc_id).")],
                     collection: Collection = None) -> Annotated[CallToolResult, DocumentFull]:
        """One document with its full text: the text every citation's start/end refer to."""
        document = DocumentFull.of(citeqa().document(doc_id, collection))
        return _result(f"{document.title} ({document.id})\n\n{document.text}", document)

    @server.tool(annotations=_READ_ONLY)
    @_as_tool_errors
    def list_collections() -> Annotated[CallToolResult, CollectionList]:
        """Every collection with its number of documents, and the one used when none is
        named."""
        app = citeqa()
        listed = CollectionList(
            collections=[CollectionInfo(name=record.name, documents=documents, chunks=chunks,
                                        model=record.model)
                         for record, documents, chunks in app.collections()],
            default=app.collection_name(None))
        lines = [f"{c.name}: {c.documents} documents, {c.chunks} passages"
                 + (" (default)" if c.name == listed.default else "")
                 for c in listed.collections]
        return _result("\n".join(lines) or "No collections yet.", listed)

    return server


def run_stdio(settings: Settings) -> None:
    """Serve the tools over stdin and stdout until the client closes them (`citeqa mcp`)."""
    # stdout is the protocol's wire: whatever loading the model prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        app = Citeqa.build(settings)
    build_server(lambda: app).run("stdio")


class _KeyRequired:
    """With API keys configured, `/mcp` wants `Authorization: Bearer <key>` as `/v1` does;
    refused before the body is read."""

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = key_refusal(self.keys, Headers(scope=scope).get("authorization"))
        if refusal is not None:
            await error_response(401, "invalid_api_key", refusal, openai_style=True)(
                scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Sessions:
    """The `/mcp` endpoint over the session manager of the app's current lifespan: the SDK's
    manager runs once only, and an app may start more than once (tests reuse one app)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.endpoint: ASGIApp | None = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """A fresh server and session manager for one run of the app's lifespan."""
        server = build_server(lambda: self.app.state.citeqa)
        # Stateless JSON: any worker answers any request (no session to keep), and nothing
        # streams, so the request log and limits see whole requests. The Host and Origin
        # checks are the server's own (SiteGuard, CITEQA_ALLOWED_HOSTS/CITEQA_CORS_ORIGINS),
        # not a second list here.
        server.streamable_http_app(
            streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        sessions = server.session_manager
        self.endpoint = StreamableHTTPASGIApp(sessions)
        try:
            async with sessions.run():
                yield
        finally:
            self.endpoint = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.endpoint is None:
            await error_response(503, "not_started", "the MCP endpoint is not running",
                                 openai_style=True)(scope, receive, send)
            return
        await self.endpoint(scope, receive, send)


def mount(app: FastAPI, keys: list[str]) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Serve the tools at `/mcp` (streamable HTTP) in `app`; what its lifespan must run."""
    sessions = _Sessions(app)
    app.router.routes.append(
        Route(MCP_PATH, _KeyRequired(sessions, keys), methods=["GET", "POST", "DELETE"]))
    return sessions.run
