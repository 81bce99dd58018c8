"""The MCP server, through the real `mcp` client: over stdio (`citeqa mcp` in a child process)
and over streamable HTTP (`/mcp` in a real `citeqa serve`, with API keys)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from conftest import LAB_DOC, copy_data_folder, serving
from fastapi.testclient import TestClient
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app

pytestmark = pytest.mark.anyio

LAB_QUESTION = "Who co-leads the lab?"
TOOLS = {"ask", "search", "verify", "get_document", "list_collections"}
KEY = "mcp-test-key-1"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "test", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def text_of(result: CallToolResult) -> str:
    assert result.content and isinstance(result.content[0], TextContent)
    return result.content[0].text


async def check_the_tools(client: Client) -> None:
    """What every transport must offer: the four tools, and answers whose spans are real."""
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    assert all(tool.output_schema for tool in listed.tools)

    asked = await client.call_tool("ask", {"question": LAB_QUESTION, "top_k": 3})
    assert not asked.is_error, text_of(asked)
    answer: dict[str, Any] = asked.structured_content or {}
    assert not answer["abstained"]
    assert "Miriam Okafor" in answer["answer"]
    citation = answer["citations"][0]
    assert citation["doc_id"] == LAB_DOC
    # The readable text shows the same span, with its offsets.
    assert f"({LAB_DOC}, characters {citation['start']}-{citation['end']})" in text_of(asked)
    assert citation["quote"] in text_of(asked)

    fetched = await client.call_tool("get_document", {"doc_id": citation["doc_id"]})
    assert not fetched.is_error, text_of(fetched)
    text = (fetched.structured_content or {})["text"]
    assert text[citation["start"]:citation["end"]] == citation["quote"]

    searched = await client.call_tool("search", {"query": LAB_QUESTION, "top_k": 2})
    passages = (searched.structured_content or {})["passages"]
    assert len(passages) == 2
    assert passages[0]["doc_id"] == LAB_DOC
    assert text[passages[0]["start"]:passages[0]["end"]] == passages[0]["text"]

    collections = await client.call_tool("list_collections", {})
    listed_collections = collections.structured_content or {}
    assert listed_collections["default"] == "articles"
    assert [c["name"] for c in listed_collections["collections"]] == ["articles"]
    assert "articles: 10 documents" in text_of(collections)


# stdio -------------------------------------------------------------------------------------


def stdio_server(data_dir: Path) -> StdioServerParameters:
    """`citeqa mcp` over a data folder, as a desktop assistant would start it."""
    return StdioServerParameters(
        command=sys.executable, args=["-c", "from server.cli import main; main()",
                                      "--data-dir", str(data_dir), "mcp"],
        env={"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false"},
        cwd=str(Path(__file__).resolve().parent.parent))


async def test_stdio_offers_the_tools_and_cites_real_spans(sample_settings: Settings) -> None:
    async with Client(stdio_server(sample_settings.data_dir), read_timeout_seconds=120) as client:
        await check_the_tools(client)


async def test_stdio_reports_citeqa_errors_as_tool_errors(sample_settings: Settings) -> None:
    async with Client(stdio_server(sample_settings.data_dir), read_timeout_seconds=120) as client:
        unknown = await client.call_tool("ask", {"question": LAB_QUESTION,
                                                 "collection": "no-such-collection"})
        missing = await client.call_tool("get_document", {"doc_id": "no-such-doc.md"})
        out_of_range = await client.call_tool("search", {"query": LAB_QUESTION, "top_k": 0})
        empty = await client.call_tool("ask", {"question": "   "})

    assert unknown.is_error
    assert "collection_not_found" in text_of(unknown)
    assert "no-such-collection" in text_of(unknown)
    assert missing.is_error
    assert "no-such-doc.md" in text_of(missing)
    assert out_of_range.is_error
    assert "top_k" in text_of(out_of_range)
    assert empty.is_error
    assert "empty_question" in text_of(empty)


# streamable HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory, _sample_data_template: Path
                 ) -> Iterator[str]:
    """A real `citeqa serve` of the sample articles that wants an API key; its base URL."""
    data_dir = tmp_path_factory.mktemp("mcp") / "data"
    copy_data_folder(_sample_data_template, data_dir)
    with serving(data_dir, env={"CITEQA_API_KEYS": KEY}) as base:
        yield base


def http_client(base: str, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = streamable_http_client(
        f"{base}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=120))
    return Client(transport, read_timeout_seconds=120)


async def test_http_offers_the_tools_and_cites_real_spans(keyed_server: str) -> None:
    async with http_client(keyed_server, KEY) as client:
        await check_the_tools(client)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", KEY])
def test_http_without_the_key_is_refused(keyed_server: str, authorization: str | None) -> None:
    headers = {**MCP_HEADERS, **({"Authorization": authorization} if authorization else {})}
    response = httpx.post(f"{keyed_server}/mcp", json=INITIALIZE, headers=headers, timeout=30)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "result" not in response.json()


async def test_the_mcp_client_without_the_key_cannot_connect(keyed_server: str) -> None:
    with pytest.raises(ExceptionGroup) as raised:
        async with http_client(keyed_server, None) as client:
            await client.list_tools()
    # The SDK reports the server's 401 as an error response to its first request.
    assert raised.group_contains(MCPError, match="error response")


def test_http_with_the_key_initializes(keyed_server: str) -> None:
    response = httpx.post(f"{keyed_server}/mcp", json=INITIALIZE, timeout=30,
                          headers={**MCP_HEADERS, "Authorization": f"Bearer {KEY}"})

    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "citeqa"


def test_an_open_server_answers_mcp_without_a_key(client: TestClient) -> None:
    response = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)

    assert response.status_code == 200, response.text
    assert response.json()["result"]["capabilities"]["tools"] is not None


def test_an_app_started_again_still_answers_mcp(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    # The SDK's session manager runs once; a server restarted in-process (as test clients do)
    # must get a new one rather than fail every /mcp request.
    app = create_app(sample_settings, embedder=embedder)
    for _ in range(2):
        with TestClient(app) as started:
            response = started.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert response.status_code == 200, response.text


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({"Host": "rebound.example"}, 400, "host_not_allowed"),
    ({"Origin": "https://elsewhere.example"}, 403, "cross_origin_refused"),
])
def test_http_keeps_the_host_and_origin_checks(
        keyed_server: str, headers: dict[str, str], status: int, code: str) -> None:
    response = httpx.post(f"{keyed_server}/mcp", json=INITIALIZE, timeout=30, headers={
        **MCP_HEADERS, "Authorization": f"Bearer {KEY}", **headers})

    assert response.status_code == status, response.text
    assert response.json()["error"] == code
