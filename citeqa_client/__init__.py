"""A light client for a running `citeqa serve`: LangChain's retriever over its search API, and
a LangChain tool over its verify API.

Needs only httpx and langchain-core (no model, no vector store), so an application that asks
a citeqa server for passages installs tens of megabytes, not the server's stack. It imports
no citeqa package; the in-process retriever and verify tool (`qa.langchain_retriever`,
`qa.langchain_tools`) share its code.
"""

from citeqa_client.retriever import CiteqaClientError, CiteqaHttpRetriever
from citeqa_client.verify import CiteqaHttpVerifyTool, verification_text

__all__ = ["CiteqaClientError", "CiteqaHttpRetriever", "CiteqaHttpVerifyTool",
           "verification_text"]
