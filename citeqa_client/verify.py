"""`CiteqaHttpVerifyTool`: `POST /v1/verify` of a citeqa server as a LangChain tool, and the
readable report of a verification that every verify tool (LangChain, MCP) gives."""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, field_validator

from citeqa_client.retriever import CiteqaClientError, error_of, server_url

VERIFY_DESCRIPTION = (
    "Check a text (a draft, a summary, another model's answer) sentence by sentence against "
    "the articles citeqa holds. Each sentence gets a verdict: supported (the exact article "
    "span that says the same is quoted), contradicted (the matching passage says otherwise: "
    "another name, number or date, or a negation), unsupported (nothing in the articles "
    "states it) or not_checkable (a question, greeting or opinion). Use it before stating "
    "facts you are unsure of."
)
# What the evidence under a sentence is: only a supported sentence's evidence supports it.
_EVIDENCE_LABEL = {"supported": "source", "contradicted": "the article says",
                   "unsupported": "closest"}


class VerifyInput(BaseModel):
    """What a model passes to a verify tool."""

    text: str = Field(description="The text to check, one or more sentences.")
    as_of: str | None = Field(
        default=None, description="Check as of this date (YYYY-MM-DD; default today): "
        "documents dated after it are not used as evidence.")


def verification_text(result: dict[str, Any]) -> str:
    """A verification (`POST /v1/verify`'s JSON) as a person or model reads it: each sentence
    with its verdict, why, and the exact span behind it; then the counts."""
    blocks = []
    for sentence in result["sentences"]:
        verdict = sentence["verdict"]
        lines = [f"[{verdict}] {sentence['text']}"]
        if sentence.get("reason") and verdict != "supported":
            lines.append(f"  why: {sentence['reason']}")
        label = _EVIDENCE_LABEL.get(verdict)
        for e in sentence["evidence"] if label else []:
            lines.append(f'  {label}: {e["title"]} ({e["doc_id"]}, characters '
                         f'{e["start"]}-{e["end"]}): "{e["quote"]}"')
        blocks.append("\n".join(lines))
    counts = ", ".join(f"{n} {verdict.replace('_', ' ')}"
                       for verdict, n in result["counts"].items())
    return "\n\n".join([*blocks, f"{len(result['sentences'])} sentences: {counts}."])


class CiteqaHttpVerifyTool(BaseTool):
    """A running citeqa server's `POST /v1/verify` as a LangChain tool, for agents that
    should check what they (or another model) wrote against the articles::

        tool = CiteqaHttpVerifyTool(base_url="http://127.0.0.1:8000")
        report = tool.invoke({"text": "The lab opens in March 2026."})
        model_with_tools = chat_model.bind_tools([tool])

    The tool's content is the readable report (`verification_text`); called with a tool call,
    the `ToolMessage.artifact` is the whole verification JSON (sentences with offsets into the
    text, verdicts, evidence spans, counts). Errors are `CiteqaClientError`s carrying the
    server's status, code and detail.
    """

    name: str = "citeqa_verify"
    description: str = VERIFY_DESCRIPTION
    args_schema: type[BaseModel] = VerifyInput
    response_format: str = "content_and_artifact"  # type: ignore[assignment]

    base_url: str = Field(description="The server, e.g. http://127.0.0.1:8000.")
    api_key: str | None = Field(
        default=None, repr=False, exclude=True,
        description="API key (CITEQA_API_KEYS on the server), sent as a bearer token.")
    collection: str | None = Field(
        default=None, description="Collection to check against (default: the server's).")
    timeout: float = Field(default=120.0, gt=0, description="Seconds per HTTP request.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return server_url(value)

    def _run(self, text: str, as_of: str | None = None,
             run_manager: CallbackManagerForToolRun | None = None) -> tuple[str, dict[str, Any]]:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.post(**self._request(text, as_of))
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._report(response)

    async def _arun(self, text: str, as_of: str | None = None,
                    run_manager: AsyncCallbackManagerForToolRun | None = None
                    ) -> tuple[str, dict[str, Any]]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(**self._request(text, as_of))
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self._report(response)

    def _endpoint(self) -> str:
        return f"{self.base_url}/v1/verify"

    def _request(self, text: str, as_of: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if self.collection is not None:
            body["collection"] = self.collection
        if as_of is not None:
            body["as_of"] = as_of
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {"url": self._endpoint(), "json": body, "headers": headers}

    def _unreachable(self, exc: httpx.HTTPError) -> CiteqaClientError:
        return CiteqaClientError(
            f"cannot reach citeqa at {self.base_url}: {exc or type(exc).__name__}",
            code="citeqa_unreachable", status=503)

    def _report(self, response: httpx.Response) -> tuple[str, dict[str, Any]]:
        if not response.is_success:
            code, detail = error_of(response)
            raise CiteqaClientError(
                f"citeqa verify at {self._endpoint()} failed with HTTP "
                f"{response.status_code} ({code}): {detail}",
                code=code, status=response.status_code)
        try:
            result: dict[str, Any] = response.json()
            return verification_text(result), result
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CiteqaClientError(
                f"{self._endpoint()} did not answer with a citeqa verification; is "
                f"{self.base_url} a citeqa server? ({exc!r})",
                code="bad_remote_response", status=502) from exc
