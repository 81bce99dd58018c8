"""`Citeqa`: the use cases the routes, the command line, evaluation and the benchmarks share.

Each use case is here once: reading sources, ingesting them, asking (whole or as events),
searching, and looking after documents and collections. A collection not named is the
configured one (`CITEQA_COLLECTION`): `AnswerOptions.collection_for`, the one place that rule
is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from langchain_core.language_models import BaseChatModel

from citeqa.stream import AnswerEvents, answer_events
from core.documents import (
    Document,
    DocumentPage,
    Filters,
    IngestReport,
    SkippedSource,
    StoredDocument,
)
from core.errors import CiteqaError, Conflict, InvalidInput
from core.settings import Settings
from index.catalog import CollectionRecord
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.errors import UnreadableFile
from index.fetch import fetch_url, is_url, load_locations
from index.ingest import ProgressCallback, ingest_documents
from index.loaders import load_bytes, record_document
from index.store import CollectionStore, Store, validate_collection_name
from qa.abstain import SupportModel
from qa.answer import Answer, Passage
from qa.draft import Answerer
from qa.followup import Turn
from qa.generate import chat_model_from
from qa.pipeline import AnswerOptions, Assistant
from qa.timeframe import as_of_date, today
from qa.verify import CheckedStatement, Verification, Verifier, count_verdicts, statement_spans

Loaded = Document | SkippedSource
"""A source read: a document, or the reason it was skipped."""


# The collection `make run` (`make ingest-samples`) puts the bundled sample articles in.
SAMPLES_COLLECTION = "samples"


# Document listings come in pages, so a listing's memory and time do not grow with the collection:
# this many by default, never more than the maximum.
LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000

class Citeqa:
    """A running citeqa: its settings, store, embedding model and assistant, and every use
    case over them. Built once (the model load is the slow part) and shared."""

    def __init__(self, settings: Settings, *, store: Store | None = None,
                 embedder: Embedder | None = None, chat_model: BaseChatModel | None = None,
                 answerer: Answerer | None = None, support: SupportModel | None = None,
                 on_ingest: Callable[[IngestReport], None] | None = None) -> None:
        self.settings = settings
        self.options = AnswerOptions.from_settings(settings)
        self.store = store or Store.from_settings(settings)
        # The model is loaded at first need: listing or deleting documents needs none.
        self._embedder = embedder
        self._chat_model = chat_model
        self._answerer = answerer
        self._support = support
        self._assistant: Assistant | None = None
        # Told of every ingestion, even one refused for holding nothing readable (metrics).
        self.on_ingest = on_ingest

    @classmethod
    def build(cls, settings: Settings, *, embedder: Embedder | None = None,
              store: Store | None = None, chat_model: BaseChatModel | None = None,
              answerer: Answerer | None = None, support: SupportModel | None = None
              ) -> Citeqa:
        """Open the store and load the model now (the slow part of starting up)."""
        app = cls(settings, store=store, embedder=embedder, chat_model=chat_model,
                  answerer=answerer, support=support)
        app.assistant  # noqa: B018 (built for its side effect: the model loads now)
        return app

    @property
    def embedder(self) -> Embedder:
        """The embedding model (`CITEQA_EMBEDDING_MODEL`), loaded at first use."""
        if self._embedder is None:
            settings = self.settings
            self._embedder = SentenceTransformerEmbedder(
                settings.embedding_model, batch_size=settings.embedding_batch_size,
                encoder=settings.encoder, cache_dir=settings.data_dir / "models",
                query_precision=settings.query_precision)
        return self._embedder

    @property
    def assistant(self) -> Assistant:
        """The answering pipeline over this store and model (and chat model, in LLM mode)."""
        if self._assistant is None:
            chat_model = (self._chat_model if self._chat_model is not None
                          else chat_model_from(self.settings))
            self._assistant = Assistant(store=self.store, embedder=self.embedder,
                                        options=self.options, answerer=self._answerer,
                                        support=self._support, chat_model=chat_model)
        return self._assistant

    def collection_name(self, name: str | None) -> str:
        """The collection a request names, or else the configured one (`CITEQA_COLLECTION`);
        while that is left at its default and does not exist yet, the sample articles'
        (`make run` puts them in their own collection, so they never mix with the user's)."""
        if name or "collection" in self.settings.model_fields_set:
            return self.options.collection_for(name)
        existing = {record.name for record in self.store.collections()}
        if self.options.collection not in existing and SAMPLES_COLLECTION in existing:
            return SAMPLES_COLLECTION
        return self.options.collection

    # Questions -------------------------------------------------------------------------------

    def ask(self, question: str, *, collection: str | None = None, top_k: int | None = None,
            filters: Filters | None = None, history: Sequence[Turn] = (),
            as_of: date | None = None, time_phrases: bool = True) -> Answer:
        """Answer a question from the collection, citing the exact spans used."""
        return self.assistant.ask(question, collection=self.collection_name(collection),
                                  top_k=top_k,
                                  filters=filters, history=history, as_of=as_of,
                                  time_phrases=time_phrases)

    def ask_stream(self, question: str, *, collection: str | None = None,
                   top_k: int | None = None, filters: Filters | None = None,
                   history: Sequence[Turn] = (), as_of: date | None = None,
                   live: bool = True) -> AnswerEvents:
        """The answer as events (`citeqa.stream`). A question that cannot be asked (empty,
        too long, an unknown collection) is refused here, before the first event."""
        asked = self.assistant.prepare(question, history=history,
                                       collection=self.collection_name(collection), as_of=as_of)
        return answer_events(self.assistant, asked, top_k=top_k, filters=filters, live=live)

    def ask_batch(self, lines: Iterable[str], *, collection: str | None = None,
                  top_k: int | None = None, filters: Filters | None = None,
                  as_of: date | None = None) -> Iterator[dict[str, Any]]:
        """Answer JSON lines of `{"id", "question", "as_of"?}`, one result per line in
        order: the answer with its id, or `{"id", "error", "detail"}` for a line that cannot
        be read or asked. An unknown collection stops the batch (every line would fail)."""
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "question" not in record:
                    raise ValueError('expected {"id", "question"}')
            except ValueError as exc:
                yield {"id": None, "error": "invalid_line", "detail": f"line {number}: {exc}"}
                continue
            try:
                line_as_of = record.get("as_of")
                answer = self.ask(
                    str(record["question"]), collection=collection, top_k=top_k,
                    filters=filters, as_of=as_of if line_as_of is None else as_of_date(
                        str(line_as_of), name=f"line {number}: as_of"))
            except CiteqaError as exc:
                if exc.code == "collection_not_found":
                    raise
                yield {"id": record.get("id"), "error": exc.code, "detail": exc.detail}
            else:
                yield {"id": record.get("id"), **answer.model_dump()}

    def search(self, query: str, *, collection: str | None = None, top_k: int | None = None,
               filters: Filters | None = None, as_of: date | None = None) -> list[Passage]:
        """The passages a question would be answered from, best first."""
        return self.assistant.search(query, collection=self.collection_name(collection),
                                     top_k=top_k, filters=filters, as_of=as_of)

    # Checking texts --------------------------------------------------------------------------

    def verify(self, text: str, *, collection: str | None = None,
               filters: Filters | None = None, as_of: date | None = None) -> Verification:
        """Check every sentence of any text against the collection (`qa/verify.py`)."""
        name = self.collection_name(collection)
        day = as_of or today()
        sentences = list(self.verify_stream(text, collection=name, filters=filters, as_of=day))
        return Verification(collection=name, as_of=day.isoformat(), sentences=sentences,
                            counts=count_verdicts(sentences))

    def verify_stream(self, text: str, *, collection: str | None = None,
                      filters: Filters | None = None, as_of: date | None = None
                      ) -> Iterator[CheckedStatement]:
        """The sentences of a text checked one by one, as they are. A text that cannot be
        checked (empty, too long, binary, too many sentences, an unknown collection) is
        refused here, before the first sentence."""
        spans = statement_spans(text, max_chars=self.settings.max_verify_chars,
                                max_sentences=self.settings.max_verify_sentences)
        target = self.store.collection(self.collection_name(collection))
        verifier = Verifier(target, self.embedder, as_of=as_of or today(), filters=filters)
        return verifier.check(text, spans)

    # Documents -------------------------------------------------------------------------------

    def documents(self, collection: str | None = None) -> list[StoredDocument]:
        """The documents of a collection (404 if it does not exist)."""
        return self.store.collection(self.collection_name(collection)).documents()

    def document_page(self, collection: str | None = None, *, limit: int = LIST_LIMIT,
                      cursor: str | None = None) -> DocumentPage:
        """One page of a collection's document summaries, by id (404 if it does not exist)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {MAX_LIST_LIMIT}; got {limit}",
                               code="invalid_limit")
        if cursor == "":
            raise InvalidInput("cursor is empty; leave it out for the first page, or pass the "
                               "next_cursor of the previous page", code="invalid_cursor")
        target = self.store.collection(self.collection_name(collection))
        return target.document_page(limit=limit, cursor=cursor)

    def all_document_summaries(self, collection: str | None = None, *,
                               page_size: int = MAX_LIST_LIMIT) -> Iterator[DocumentPage]:
        """Every page of a collection's document summaries, in order."""
        cursor: str | None = None
        while True:
            page = self.document_page(collection, limit=page_size, cursor=cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def document(self, doc_id: str, collection: str | None = None) -> StoredDocument:
        """One document with its full text (404 if unknown)."""
        return self.store.collection(self.collection_name(collection)).document(doc_id)

    def delete(self, doc_id: str, collection: str | None = None) -> str:
        """Remove a document from every index of its collection; the collection's name."""
        target = self.store.collection(self.collection_name(collection))
        target.delete([doc_id])
        return target.name

    # Reading and ingesting -----------------------------------------------------------------

    def read_locations(self, locations: Sequence[str]) -> list[Loaded]:
        """Files, folders (recursively) and web pages, read into documents."""
        settings = self.settings
        return list(load_locations(locations, max_bytes=settings.max_upload_bytes,
                                   timeout=settings.fetch_timeout,
                                   allow_private=settings.fetch_allow_private))

    def read_file(self, name: str, data: bytes) -> list[Loaded]:
        """Every document in one uploaded file (a JSONL file holds many), by its name."""
        return list(load_bytes(name, data, doc_id=name, max_bytes=self.settings.max_upload_bytes))

    def read_records(self, records: Iterable[Mapping[str, Any]]) -> list[Loaded]:
        """Documents given as records (`id`, `text`, and optional fields)."""
        loaded: list[Loaded] = []
        for record in records:
            try:
                loaded.append(record_document(dict(record)))
            except ValueError as exc:
                doc_id = str(record.get("id", ""))
                loaded.append(SkippedSource(doc_id, str(exc), doc_id))
        return loaded

    def fetch(self, url: str) -> list[Loaded]:
        """A web page, fetched from a public address only (unless
        CITEQA_FETCH_ALLOW_PRIVATE), with a timeout and a size limit."""
        if not is_url(url):
            raise InvalidInput(f"not a web address: {url!r}; use http:// or https://",
                               code="invalid_url")
        settings = self.settings
        return [fetch_url(url, timeout=settings.fetch_timeout,
                          max_bytes=settings.max_upload_bytes,
                          allow_private=settings.fetch_allow_private)]

    def ingest(self, loaded: Sequence[Loaded], *, collection: str | None = None,
               prune: bool = False, progress: ProgressCallback | None = None,
               embedding_progress: ProgressCallback | None = None) -> IngestReport:
        """Add new documents, replace changed ones, skip unchanged ones; with `prune`, remove
        the collection's documents that are not among them. `progress` counts documents
        read, then `embedding_progress` chunks embedded (`index.ingest.ingest_documents`).

        Nothing readable is refused before the store is touched, so a failed upload leaves no
        trace (not even an empty collection) and `prune` never empties a collection by
        mistake; a batch whose every document was skipped is refused too.
        """
        # New documents go where named or configured, never to the samples.
        name = validate_collection_name(self.options.collection_for(collection))
        if not any(isinstance(item, Document) for item in loaded):
            skipped = [item for item in loaded if isinstance(item, SkippedSource)]
            self._ingested(IngestReport(skipped=skipped))
            raise UnreadableFile(nothing_ingested(skipped))
        report = ingest_documents(loaded, store=self.store, collection=name,
                                  embedder=self.embedder, settings=self.settings,
                                  prune=prune, progress=progress,
                                  embedding_progress=embedding_progress)
        self._ingested(report)
        if report.skipped and not (report.added or report.updated or report.unchanged):
            raise UnreadableFile(nothing_ingested(report.skipped))
        return report

    def settle(self, collection: str | None = None) -> None:
        """Finish a rebuild of the collection's lexical index a large ingestion started in the
        background; for a process about to exit (`citeqa ingest`)."""
        self.store.collection(self.options.collection_for(collection)).settle()

    def _ingested(self, report: IngestReport) -> None:
        if self.on_ingest is not None:
            self.on_ingest(report)

    # Collections ----------------------------------------------------------------------------

    def collections(self) -> list[tuple[CollectionRecord, int, int]]:
        """Every collection with its number of documents and chunks."""
        sizes = []
        for record in self.store.collections():
            target = self.store.collection(record.name)
            sizes.append((record, target.count_documents(), target.count_chunks()))
        return sizes

    def create_collection(self, name: str) -> CollectionStore:
        """An empty collection for this embedding model (409 if it exists)."""
        name = validate_collection_name(name)
        if any(record.name == name for record in self.store.collections()):
            raise Conflict(f"collection {name!r} exists already", code="collection_exists")
        return self.store.create_collection(name, model=self.embedder.name,
                                            dimension=self.embedder.dimension)

    def delete_collection(self, name: str) -> None:
        """Remove a collection with all its documents, vectors and indexes (404 if unknown)."""
        self.store.delete_collection(name)


def nothing_ingested(skipped: Sequence[SkippedSource], shown: int = 20) -> str:
    """Why nothing was ingested: the first reasons, and how many more there are."""
    if not skipped:
        return "nothing was ingested: the upload held no documents"
    reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:shown])
    more = f"; and {len(skipped) - shown:,} more" if len(skipped) > shown else ""
    return f"nothing was ingested: {reasons}{more}"
