"""A light client for a running `citeqa serve`: LangChain's retriever over its search API.

Needs only httpx and langchain-core (no model, no vector store), so an application that asks
a citeqa server for passages installs tens of megabytes, not the server's stack. It imports
no citeqa package and none imports it but the retriever in `qa.langchain_retriever`, which
shares its HTTP code.
"""

from citeqa_client.retriever import CiteqaClientError, CiteqaHttpRetriever

__all__ = ["CiteqaClientError", "CiteqaHttpRetriever"]
