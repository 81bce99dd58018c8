"""Ingestion: sources -> documents -> chunks -> vectors -> store, idempotent by content hash."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from index.chunking import Chunker
from index.embedding import Embedder
from index.loaders import load_sources
from index.models import Chunk, Document, IngestReport, PreparedDocument, SkippedSource
from index.settings import Settings
from index.store import CollectionStore, Store
from index.text import search_tokens, sentence_spans

# Chunks embedded and written per batch: large enough to keep the model busy, small enough
# that an interrupted run loses little work.
BATCH_CHUNKS = 256

ProgressCallback = Callable[[int, int], None]
"""Called with (documents done, documents in total) as ingestion goes on."""


def ingest_paths(
    paths: Sequence[str | Path],
    *,
    store: Store,
    collection: str,
    embedder: Embedder,
    settings: Settings,
    prune: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest files and folders into a collection; see `ingest_documents`."""
    loaded = list(load_sources(paths, max_bytes=settings.max_upload_bytes))
    return ingest_documents(
        loaded, store=store, collection=collection, embedder=embedder, settings=settings,
        prune=prune, progress=progress,
    )


def ingest_documents(
    loaded: Iterable[Document | SkippedSource],
    *,
    store: Store,
    collection: str,
    embedder: Embedder,
    settings: Settings,
    prune: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Add new documents, replace changed ones, skip unchanged ones; optionally prune the rest."""
    started = time.perf_counter()
    items = list(loaded)
    target = store.create_collection(collection, model=embedder.name,
                                     dimension=embedder.dimension)
    chunker = Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    report = IngestReport()
    stored_hashes = target.content_hashes()
    seen: set[str] = set()
    pending: list[tuple[Document, list[Chunk]]] = []
    pending_chunks = 0

    def flush() -> None:
        nonlocal pending, pending_chunks
        if pending:
            _embed_and_write(pending, target=target, embedder=embedder, settings=settings)
            report.chunks += pending_chunks
        pending, pending_chunks = [], 0

    for done, item in enumerate(items, start=1):
        if isinstance(item, SkippedSource):
            report.skipped.append(item)
            if item.doc_id:
                seen.add(item.doc_id)
        elif item.id in seen:
            report.skipped.append(SkippedSource(item.id, "duplicate document id in this run; "
                                                "the first one was kept", item.id))
        else:
            seen.add(item.id)
            old_hash = stored_hashes.get(item.id)
            if old_hash == item.content_hash:
                report.unchanged.append(item.id)
            else:
                (report.updated if old_hash else report.added).append(item.id)
                chunks = chunker.split(item)
                pending.append((item, chunks))
                pending_chunks += len(chunks)
                if pending_chunks >= BATCH_CHUNKS:
                    flush()
        if progress:
            progress(done, len(items))
    flush()
    if prune:
        report.pruned = sorted(set(stored_hashes) - seen)
        if report.pruned:
            target.delete(report.pruned)
    # Build the lexical index now, so the first question does not pay for it.
    target.lexical.refresh()
    report.seconds = time.perf_counter() - started
    return report


def embedding_text(document: Document, chunk: Chunk, *, with_title: bool) -> str:
    """What the model sees for a chunk: its text, after the document title if asked."""
    if with_title and document.title and not chunk.text.startswith(document.title):
        return f"{document.title}\n{chunk.text}"
    return chunk.text


def _embed_and_write(
    batch: list[tuple[Document, list[Chunk]]],
    *,
    target: CollectionStore,
    embedder: Embedder,
    settings: Settings,
) -> None:
    # Chunks and sentences go through the model together, so one pass keeps it busy. Sentence
    # vectors let the answerer score every sentence of the top passages without the model.
    texts: list[str] = []
    sentence_spans_of: list[list[tuple[int, int]]] = []
    for document, chunks in batch:
        texts.extend(embedding_text(document, chunk, with_title=settings.embed_title)
                     for chunk in chunks)
        spans = sentence_spans(document.text)
        sentence_spans_of.append(spans)
        texts.extend(document.text[start:end] for start, end in spans)
    vectors = embedder.embed_documents(texts)
    items = []
    offset = 0
    for (document, chunks), spans in zip(batch, sentence_spans_of, strict=True):
        chunk_vectors = vectors[offset:offset + len(chunks)]
        offset += len(chunks)
        sentence_vectors = vectors[offset:offset + len(spans)]
        offset += len(spans)
        items.append(PreparedDocument(
            document=document,
            chunks=chunks,
            chunk_vectors=np.asarray(chunk_vectors),
            chunk_tokens=[search_tokens(f"{document.title} {chunk.text}") for chunk in chunks],
            sentences=spans,
            sentence_vectors=np.asarray(sentence_vectors),
        ))
    target.write(items)
