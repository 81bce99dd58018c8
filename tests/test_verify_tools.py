"""`verify` for agents: the MCP tool (through the real `mcp` client), the in-process LangChain
tool, and the light client's LangChain tool over a real `citeqa serve`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import LAB_DOC, canned_json_server
from langchain_core.messages import ToolMessage
from mcp import Client
from mcp.types import CallToolResult, TextContent

from citeqa import Citeqa
from citeqa_client import CiteqaClientError, CiteqaHttpVerifyTool
from core.errors import InvalidInput, NotFound
from qa.langchain_tools import CiteqaVerifyTool
from server.mcp import build_server

pytestmark = pytest.mark.slow

CHATBOT_ANSWER = (
    "Great question! The Northgate-Corvalis AI Lab will open in March 2026 in Rotterdam. "
    "About 60 researchers will work at the lab. "
    "The city also plans a cable car over the harbour.")
VERDICTS = ["not_checkable", "contradicted", "supported", "unsupported"]
RATE = "The Bank of Esterland cut its main interest rate to 3.50 percent."


def text_of(result: CallToolResult) -> str:
    assert result.content and isinstance(result.content[0], TextContent)
    return result.content[0].text


def assert_readable_report(report: str, verification: dict[str, Any]) -> None:
    """The report a model reads: every sentence's verdict, why, and its evidence's exact span."""
    for sentence in verification["sentences"]:
        assert f"[{sentence['verdict']}] {sentence['text']}" in report
    contradicted = verification["sentences"][1]
    assert f"why: {contradicted['reason']}" in report
    supported = verification["sentences"][2]["evidence"][0]
    assert (f"source: {supported['title']} ({LAB_DOC}, characters "
            f"{supported['start']}-{supported['end']}): \"{supported['quote']}\"") in report
    assert "closest: " in report  # an unsupported sentence's nearest span is not its source
    assert report.endswith("4 sentences: 1 supported, 1 contradicted, 1 unsupported, "
                           "1 not checkable.")


# MCP -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_mcp_tool_gives_verdicts_and_a_readable_report(
        sample_services: Citeqa) -> None:
    async with Client(build_server(lambda: sample_services)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["verify"].output_schema
        assert "contradicted" in (listed["verify"].description or "")
        checked = await client.call_tool("verify", {"text": CHATBOT_ANSWER,
                                                    "collection": "articles"})
        assert not checked.is_error, text_of(checked)
        verification: dict[str, Any] = checked.structured_content or {}
        assert [s["verdict"] for s in verification["sentences"]] == VERDICTS
        for sentence in verification["sentences"]:
            assert CHATBOT_ANSWER[sentence["start"]:sentence["end"]] == sentence["text"]
        assert_readable_report(text_of(checked), verification)

        earlier = await client.call_tool("verify", {"text": RATE, "as_of": "2026-01-01"})
        assert (earlier.structured_content or {})["sentences"][0]["verdict"] == "unsupported"


@pytest.mark.anyio
@pytest.mark.parametrize(("arguments", "code"), [
    ({"text": "  "}, "empty_text"),
    ({"text": "PK\x03\x04\x00\x00 zip bytes"}, "binary_text"),
    ({"text": RATE, "collection": "nowhere"}, "collection_not_found"),
    ({"text": RATE, "as_of": "last week"}, "invalid_as_of"),
])
async def test_the_mcp_tool_reports_bad_input_as_tool_errors(
        sample_services: Citeqa, arguments: dict[str, str], code: str) -> None:
    async with Client(build_server(lambda: sample_services)) as client:
        refused = await client.call_tool("verify", arguments)
    assert refused.is_error
    assert code in text_of(refused)


# LangChain, in process -----------------------------------------------------------------------


def test_the_langchain_tool_reports_and_gives_the_verification_as_artifact(
        sample_services: Citeqa) -> None:
    tool = CiteqaVerifyTool(verifier=sample_services, collection="articles")
    assert tool.name == "citeqa_verify"
    assert set(tool.args) == {"text", "as_of"}
    message = tool.invoke({"name": tool.name, "args": {"text": CHATBOT_ANSWER},
                           "id": "call-1", "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    verification = message.artifact
    assert [s["verdict"] for s in verification["sentences"]] == VERDICTS
    assert_readable_report(str(message.content), verification)
    # Called directly, it gives the report alone.
    assert tool.invoke({"text": CHATBOT_ANSWER}) == message.content


@pytest.mark.anyio
async def test_the_langchain_tool_honours_as_of_and_documents(sample_services: Citeqa) -> None:
    tool = CiteqaVerifyTool(verifier=sample_services, collection="articles")
    assert (await tool.ainvoke({"text": RATE})).startswith("[supported]")
    assert (await tool.ainvoke({"text": RATE, "as_of": "2026-01-01"})).startswith(
        "[unsupported]")
    elsewhere = CiteqaVerifyTool(verifier=sample_services, collection="articles",
                                 doc_ids=("deep-sea-shrimp.md",))
    assert elsewhere.invoke({"text": RATE}).startswith("[unsupported]")


def test_the_langchain_tool_raises_citeqa_errors(sample_services: Citeqa) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        CiteqaVerifyTool(verifier=sample_services).invoke({"text": " "})
    with pytest.raises(NotFound, match="nowhere"):
        CiteqaVerifyTool(verifier=sample_services, collection="nowhere").invoke({"text": RATE})


# LangChain, over HTTP (the light client) -----------------------------------------------------


def test_the_http_tool_matches_the_in_process_one(live_server: str,
                                                  sample_services: Citeqa) -> None:
    remote = CiteqaHttpVerifyTool(base_url=live_server + "/", collection="articles")
    local = CiteqaVerifyTool(verifier=sample_services, collection="articles")
    call = {"name": "citeqa_verify", "args": {"text": CHATBOT_ANSWER}, "id": "c",
            "type": "tool_call"}
    remote_message = remote.invoke(call)
    local_message = local.invoke(call)
    assert remote_message.content == local_message.content
    assert remote_message.artifact["sentences"] == local_message.artifact["sentences"]
    assert_readable_report(str(remote_message.content), remote_message.artifact)


@pytest.mark.anyio
async def test_the_http_tool_reports_the_servers_refusals(live_server: str) -> None:
    tool = CiteqaHttpVerifyTool(base_url=live_server, collection="nowhere")
    with pytest.raises(CiteqaClientError) as raised:
        await tool.ainvoke({"text": RATE})
    assert (raised.value.status, raised.value.code) == (404, "collection_not_found")
    with pytest.raises(CiteqaClientError) as raised:
        CiteqaHttpVerifyTool(base_url=live_server).invoke({"text": "Is it? " * 5_001})
    assert raised.value.code == "too_many_sentences"
    assert "CITEQA_MAX_VERIFY_SENTENCES" in raised.value.detail


def test_the_http_tool_sends_the_key_and_says_when_no_server_answers() -> None:
    refusal = {"error": {"message": "wrong API key", "type": "invalid_request_error",
                         "param": None, "code": "invalid_api_key"}, "detail": "wrong API key"}
    with (canned_json_server(401, refusal) as (base, received),
          pytest.raises(CiteqaClientError, match="wrong API key") as raised):
        CiteqaHttpVerifyTool(base_url=base, api_key="s3cret", collection="c1").invoke(
            {"text": RATE, "as_of": "2026-01-01"})
    assert raised.value.status == 401
    [(headers, body)] = received
    assert headers["Authorization"] == "Bearer s3cret"
    assert body == {"text": RATE, "collection": "c1", "as_of": "2026-01-01"}

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CiteqaClientError) as raised:
        CiteqaHttpVerifyTool(base_url=f"http://127.0.0.1:{port}", timeout=5).invoke(
            {"text": RATE})
    assert (raised.value.status, raised.value.code) == (503, "citeqa_unreachable")
    with pytest.raises(ValueError, match="http"):
        CiteqaHttpVerifyTool(base_url="ftp://example.org")


def test_the_http_tool_loads_nothing_heavy() -> None:
    script = ("import sys\n"
              "from citeqa_client import CiteqaHttpVerifyTool\n"
              "CiteqaHttpVerifyTool(base_url='http://127.0.0.1:8000')\n"
              "print(','.join(m for m in ('torch', 'chromadb', 'numpy', 'onnxruntime', "
              "'core', 'index', 'qa', 'citeqa', 'server') if m in sys.modules))\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert ran.stdout.strip() == "", f"the client loaded {ran.stdout.strip()}"
