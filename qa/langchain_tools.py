"""`CiteqaVerifyTool`: citeqa's sentence-by-sentence check of any text as a LangChain tool,
in this process (the HTTP one is `citeqa_client.CiteqaHttpVerifyTool`)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any, Protocol, runtime_checkable

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from citeqa_client.verify import VERIFY_DESCRIPTION, VerifyInput, verification_text
from core.documents import Filters
from qa.timeframe import as_of_date
from qa.verify import Verification


@runtime_checkable
class TextVerifier(Protocol):
    """What checks a text: `citeqa.Citeqa` (the application layer, which this layer may not
    import) is one."""

    def verify(self, text: str, *, collection: str | None = None,
               filters: Filters | None = None, as_of: date | None = None) -> Verification:
        """Every sentence of `text` checked against the collection."""
        ...


class CiteqaVerifyTool(BaseTool):
    """`Citeqa.verify` as a LangChain tool, for agents that should check what they (or another
    model) wrote against the articles, in this process::

        from citeqa import Citeqa
        from core.settings import Settings
        from qa.langchain_tools import CiteqaVerifyTool

        tool = CiteqaVerifyTool(verifier=Citeqa.build(Settings()), collection="articles")
        report = tool.invoke({"text": "The lab opens in March 2026."})
        model_with_tools = chat_model.bind_tools([tool])

    The tool's content is the readable report; called with a tool call, the
    `ToolMessage.artifact` is the verification (`Verification.model_dump()`: sentences with
    offsets into the text, verdicts, evidence spans, counts). Errors are `CiteqaError`s
    (an empty or binary text, an unknown collection...).
    """

    name: str = "citeqa_verify"
    description: str = VERIFY_DESCRIPTION
    args_schema: type[BaseModel] = VerifyInput
    response_format: str = "content_and_artifact"  # type: ignore[assignment]

    verifier: TextVerifier = Field(
        exclude=True, description="What checks the text: a `citeqa.Citeqa`.")
    collection: str | None = Field(
        default=None, description="Collection to check against (default: the configured one).")
    doc_ids: tuple[str, ...] = Field(
        default=(), description="Take evidence only from these documents (default: any).")

    def _run(self, text: str, as_of: str | None = None,
             run_manager: CallbackManagerForToolRun | None = None) -> tuple[str, dict[str, Any]]:
        filters = Filters(doc_ids=self.doc_ids) if self.doc_ids else None
        day = as_of_date(as_of) if as_of is not None else None
        result = self.verifier.verify(text, collection=self.collection, filters=filters,
                                      as_of=day).model_dump(mode="json")
        return verification_text(result), result

    async def _arun(self, text: str, as_of: str | None = None,
                    run_manager: AsyncCallbackManagerForToolRun | None = None
                    ) -> tuple[str, dict[str, Any]]:
        # The check embeds and searches: off the event loop.
        return await asyncio.to_thread(self._run, text, as_of)
