"""Ingestion: sources -> documents -> chunks -> vectors -> store, idempotent by content hash."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.documents import Chunk, Document, IngestReport, PreparedDocument, SkippedSource
from core.settings import Settings
from core.text import chunk_tokens, sentence_spans
from index.chunking import Chunker
from index.embedding import Embedder
from index.loaders import load_sources
from index.store import CollectionStore, Store

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) as a stage of ingestion goes on: documents read and chunked, then
chunks embedded."""


def ingest_paths(
    paths: Sequence[str | Path],
    *,
    store: Store,
    collection: str,
    embedder: Embedder,
    settings: Settings,
    prune: bool = False,
    progress: ProgressCallback | None = None,
    embedding_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest files and folders into a collection; see `ingest_documents`."""
    loaded = list(load_sources(paths, max_bytes=settings.max_upload_bytes))
    return ingest_documents(
        loaded, store=store, collection=collection, embedder=embedder, settings=settings,
        prune=prune, progress=progress, embedding_progress=embedding_progress,
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
    embedding_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Add new documents, replace changed ones, skip unchanged ones; optionally prune the rest.

    `progress` counts documents read and chunked; `embedding_progress` then counts chunks
    embedded, the slow part, so a progress bar keeps moving while the model works.
    """
    started = time.perf_counter()
    items = list(loaded)
    target = store.create_collection(collection, model=embedder.name,
                                     dimension=embedder.dimension)
    chunker = Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    report = IngestReport()
    # Only the incoming documents' hashes, unless pruning needs every id: reading all of them
    # was most of a one-document write at a million chunks (0.78 of 0.9 s).
    stored_hashes = target.content_hashes(
        None if prune else [item.id for item in items if isinstance(item, Document)])
    seen: set[str] = set()
    # Every document is chunked before any is embedded, so the embedding stage knows its total.
    to_embed: list[tuple[Document, list[Chunk]]] = []
    for done, item in enumerate(items, start=1):
        if isinstance(item, SkippedSource):
            report.skipped.append(item)
            if item.doc_id:
                seen.add(item.doc_id)
        elif item.id in seen:
            report.skipped.append(SkippedSource(
                item.id, "duplicate document id in this run; the first one was kept", item.id))
        else:
            seen.add(item.id)
            old_hash = stored_hashes.get(item.id)
            if old_hash == item.content_hash:
                report.unchanged.append(item.id)
            else:
                (report.updated if old_hash else report.added).append(item.id)
                to_embed.append((item, chunker.split(item)))
        if progress:
            progress(done, len(items))
    report.chunks = _embed_and_write(to_embed, target=target, embedder=embedder,
                                     settings=settings, progress=embedding_progress)
    if prune:
        report.pruned = sorted(set(stored_hashes) - seen)
        if report.pruned:
            target.delete(report.pruned)
    # Build the lexical index now, so the first question does not pay for it.
    target.warm_up()
    report.seconds = time.perf_counter() - started
    return report


def _embed_and_write(
    documents: list[tuple[Document, list[Chunk]]],
    *,
    target: CollectionStore,
    embedder: Embedder,
    settings: Settings,
    progress: ProgressCallback | None,
) -> int:
    """Embed and write the documents in batches of about `ingest_batch_chunks` chunks, each
    batch committed whole; the number of chunks written."""
    total = sum(len(chunks) for _, chunks in documents)
    if progress:
        progress(0, total)
    # One batch is written (Chroma, catalog) on another thread while the next is embedded:
    # the model releases the GIL, so the writes cost little wall time. Batches still commit
    # in order, each whole or not at all.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeqa-write")
    writing: Future[int] | None = None
    written = embedded = 0

    def write(prepared: list[PreparedDocument], chunks: int) -> int:
        target.write(prepared)
        return chunks

    def wait_for_write() -> None:
        """Let the batch in flight commit (or raise its error) and count its chunks."""
        nonlocal writing, written
        if writing is not None:
            written += writing.result()
            writing = None

    try:
        for batch in _batches(documents, settings.ingest_batch_chunks):
            chunks = sum(len(batch_chunks) for _, batch_chunks in batch)

            def on_texts(done: int, texts: int, before: int = embedded, chunks: int = chunks
                         ) -> None:
                # The batch's chunks counted in proportion to its sentences embedded so far.
                if progress:
                    progress(before + chunks * done // texts, total)

            prepared = _embed(batch, target=target, embedder=embedder, settings=settings,
                              progress=on_texts)
            embedded += chunks
            if progress:
                progress(embedded, total)
            wait_for_write()
            writing = writer.submit(write, prepared, chunks)
        wait_for_write()
    finally:
        # On an error the batch in flight still commits (or fails) whole before we return.
        writer.shutdown(wait=True)
    return written


def _batches(documents: list[tuple[Document, list[Chunk]]], size: int
             ) -> Iterator[list[tuple[Document, list[Chunk]]]]:
    """Whole documents, grouped until a group holds at least `size` chunks."""
    batch: list[tuple[Document, list[Chunk]]] = []
    chunks = 0
    for document in documents:
        batch.append(document)
        chunks += len(document[1])
        if chunks >= size:
            yield batch
            batch, chunks = [], 0
    if batch:
        yield batch


# How much a document's title counts in each of its chunk vectors, against the chunk's own
# sentences (their mean has unit length). Chosen on SciFact.
TITLE_WEIGHT = 0.5


def chunk_vectors(
    chunks: list[Chunk],
    sentences: list[tuple[int, int]],
    sentence_vectors: np.ndarray,
    title_vector: np.ndarray | None = None,
) -> np.ndarray:
    """Each chunk's vector: the length-weighted mean of its sentences' vectors (plus title)."""
    vectors = np.zeros((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    ends = [end for _, end in sentences]
    for row, chunk in enumerate(chunks):
        # Sentences are in order and do not overlap, so the ones a chunk touches are a run.
        first = bisect.bisect_right(ends, chunk.start)
        for position in range(first, len(sentences)):
            start, end = sentences[position]
            if start >= chunk.end:
                break
            overlap = min(end, chunk.end) - max(start, chunk.start)
            if overlap > 0:
                vectors[row] += overlap * sentence_vectors[position]
        norm = np.linalg.norm(vectors[row])
        if norm > 0:
            vectors[row] /= norm
        elif len(sentence_vectors):
            # Cannot happen for text chunks (every one holds part of a sentence); be safe.
            vectors[row] = sentence_vectors.mean(axis=0)
            vectors[row] /= np.linalg.norm(vectors[row]) or 1.0
        if title_vector is not None:
            vectors[row] += TITLE_WEIGHT * title_vector
            vectors[row] /= np.linalg.norm(vectors[row]) or 1.0
    return vectors


def _embed(
    batch: list[tuple[Document, list[Chunk]]],
    *,
    target: CollectionStore,
    embedder: Embedder,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> list[PreparedDocument]:
    """The batch's documents with their chunk and sentence vectors, ready to write;
    `progress` hears of the batch's new sentences (and titles) embedded."""
    # Every sentence goes through the model once, and titles once per document; chunk vectors
    # are built from them. Embedding chunks as well would double the cost of ingestion for a
    # small gain in retrieval (README.md, "What each choice bought"). A changed document keeps the
    # stored vectors of its unchanged sentences: an edit re-embeds only what it touched.
    known = target.known_sentence_vectors([d.id for d, _ in batch])
    texts: list[str] = []
    spans_of: list[list[tuple[int, int]]] = []
    for document, _ in batch:
        spans = sentence_spans(document.text)
        spans_of.append(spans)
        reusable = known.get(document.id, {})
        texts.extend(text for start, end in spans
                     if (text := document.text[start:end]) not in reusable)
        if settings.embed_title and document.title:
            texts.append(document.title)
    step = EMBED_STEP_BATCHES * settings.embedding_batch_size
    fresh = iter(_embed_texts(texts, embedder, step=step, progress=progress))
    vectors = []
    for document, spans in zip((d for d, _ in batch), spans_of, strict=True):
        reusable = known.get(document.id, {})
        for start, end in spans:
            text = document.text[start:end]
            vectors.append(reusable[text] if text in reusable else next(fresh))
        if settings.embed_title and document.title:
            vectors.append(next(fresh))
    items = []
    offset = 0
    for (document, chunks), spans in zip(batch, spans_of, strict=True):
        sentence_vectors = np.asarray(vectors[offset:offset + len(spans)])
        offset += len(spans)
        title_vector = None
        if settings.embed_title and document.title:
            title_vector = vectors[offset]
            offset += 1
        items.append(PreparedDocument(
            document=document,
            chunks=chunks,
            chunk_vectors=chunk_vectors(chunks, spans, sentence_vectors, title_vector),
            chunk_tokens=[chunk_tokens(document.title, chunk.text) for chunk in chunks],
            sentences=spans,
            sentence_vectors=sentence_vectors,
        ))
    return items


# Progress is told after every EMBED_STEP_BATCHES model batches, not after each: calls of one
# batch each ingested SciFact's first 300 documents at 29 chunks/s against 50 for one call
# per ingest batch, and 55 for 16 batches per call (`python -m bench.performance --only
# ingest --ingest-docs 300`, same machine, same hour).
EMBED_STEP_BATCHES = 16


def _embed_texts(texts: list[str], embedder: Embedder, *, step: int,
                 progress: ProgressCallback | None) -> np.ndarray:
    """Vectors of the texts, embedded `step` at a time so progress can be told between steps.

    Texts go shortest first across the whole batch, so each step pads no more than one call
    for all of them would (the encoder sorts by length within a call).
    """
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for offset in range(0, len(order), step):
        rows = order[offset:offset + step]
        vectors[rows] = embedder.embed_documents([texts[i] for i in rows])
        if progress:
            progress(min(offset + step, len(order)), len(order))
    return vectors
