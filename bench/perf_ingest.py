"""Ingestion speed against the raw model, and citeqa against the LangChain-tutorial pipeline.

Both run in this process on the first N documents of one evaluation set, written to a
temporary ingest JSONL:

- `ingest_vs_raw`: citeqa's `index.ingest.ingest_paths` into a fresh data folder, then plain
  `SentenceTransformer.encode` (same model folder, same batch size) of exactly the texts citeqa
  encoded (every sentence, plus each non-empty title), then of the chunk texts themselves (what
  a pipeline that embeds chunks encodes).
- `langchain_vs_citeqa`: `langchain_chroma.Chroma.from_documents(chunks,
  HuggingFaceEmbeddings(model_name=<same folder>))` on the same chunks, and
  `similarity_search(question, k=5)` against citeqa's in-process `Assistant.ask` and
  `Assistant.search` on the index `ingest_vs_raw` built, question by question in turn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.perf_corpus import corpus_path, questions, read_jsonl, write_jsonl
from bench.perf_load import latency_summary
from core.documents import Chunk, Document
from core.settings import Settings
from core.text import sentence_spans
from index.chunking import Chunker
from index.embedding import Embedder, SentenceTransformerEmbedder, resolve_model_location
from index.ingest import ingest_paths
from index.loaders import record_document
from index.store import Store

COLLECTION = "perf-ingest"


class TimedEmbedder:
    """Passes calls through to an `Embedder`, adding up the time and texts it was given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.seconds = 0.0
        self.texts = 0
        self.chars = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, timed."""
        started = time.perf_counter()
        vectors = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        self.chars += sum(len(text) for text in texts)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one question, timed."""
        return self.embed_documents([text])[0]


@dataclass
class IngestCorpus:
    """The documents of one ingest run, their chunks, and where citeqa's index of them is."""

    name: str
    documents: list[Document]
    chunks: list[Chunk]
    settings: Settings
    result: dict[str, Any] = field(default_factory=dict)


def _timed_encode(model: Any, texts: list[str], batch_size: int) -> tuple[float, float]:
    """Wall and CPU seconds of one `encode` call, as citeqa calls it."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                 convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - wall, time.process_time() - cpu


class _EncoderAsModel:
    """citeqa's embedder behind the `encode(texts, batch_size=...)` call `_timed_encode` makes."""

    def __init__(self, embedder: SentenceTransformerEmbedder) -> None:
        self.embedder = embedder

    def encode(self, texts: list[str], batch_size: int, **_: Any) -> np.ndarray:
        """All the texts in one call, as raw `encode` gets them."""
        return self.embedder.embed_documents(texts)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ingest_vs_raw(name: str, n_docs: int, work: Path) -> IngestCorpus:
    """citeqa's ingestion of the first `n_docs` documents against raw `encode` of the same."""
    from sentence_transformers import SentenceTransformer

    records = read_jsonl(corpus_path(name), n_docs)
    source = write_jsonl(records, work / f"{name}.jsonl")
    settings = Settings(data_dir=work / f"citeqa-{name}")
    documents = [record_document(record) for record in records]
    chunker = Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    chunks = [chunk for document in documents for chunk in chunker.split(document)]
    # What citeqa's ingestion encodes (index/ingest.py): every sentence, then the title.
    texts: list[str] = []
    for document in documents:
        texts.extend(document.text[s:e] for s, e in sentence_spans(document.text))
        if settings.embed_title and document.title:
            texts.append(document.title)
    batch = settings.embedding_batch_size

    # As `citeqa ingest` builds it (citeqa/app.py): the model run by settings.encoder.
    inner = SentenceTransformerEmbedder(settings.embedding_model, batch_size=batch,
                                        encoder=settings.encoder,
                                        cache_dir=settings.data_dir / "models")
    # The ONNX export is made once per data folder: timed apart from the per-document rate.
    prepared = time.perf_counter()
    inner.prepare()
    prepare_seconds = time.perf_counter() - prepared
    embedder = TimedEmbedder(inner)
    inner.embed_documents(["warm up the model"] * batch)
    wall, cpu = time.perf_counter(), time.process_time()
    report = ingest_paths([source], store=Store(settings.data_dir), collection=COLLECTION,
                          embedder=embedder, settings=settings)
    ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu

    location = resolve_model_location(settings.embedding_model)
    raw = SentenceTransformer(location, device="cpu")
    raw.encode(["warm up the model"] * batch, batch_size=batch)
    same_wall, same_cpu = _timed_encode(raw, texts, batch)
    chunk_texts = [chunk.text for chunk in chunks]
    chunk_wall, chunk_cpu = _timed_encode(raw, chunk_texts, batch)
    # The same texts through citeqa's encoder alone, in one call: what is left is our overhead.
    encoder_wall, encoder_cpu = _timed_encode(_EncoderAsModel(inner), texts, batch)

    ours_rate = _rate(report.chunks, ours_wall)
    same_rate = _rate(len(chunks), same_wall)
    chunk_rate = _rate(len(chunks), chunk_wall)
    result = {
        "set": name, "documents": len(documents), "chunks": report.chunks,
        "model": location, "batch_size": batch,
        "citeqa": {
            "encodes": "every sentence of each document, plus each non-empty title "
                       "(chunk vectors are built from them)",
            "encoder": inner.encoder, "encoder_prepare_seconds": round(prepare_seconds, 2),
            "texts": embedder.texts, "chars": embedder.chars,
            "seconds": round(ours_wall, 2), "cpu_seconds": round(ours_cpu, 2),
            "report_seconds": round(report.seconds, 2),
            "model_seconds": round(embedder.seconds, 2),
            "other_seconds": round(ours_wall - embedder.seconds, 2),
            "chunks_per_s": ours_rate,
        },
        "raw_same_texts": {
            "encodes": "the same sentences and titles, one encode() call",
            "texts": len(texts), "chars": sum(len(t) for t in texts),
            "seconds": round(same_wall, 2), "cpu_seconds": round(same_cpu, 2),
            "texts_per_s": _rate(len(texts), same_wall), "chunks_per_s": same_rate,
        },
        "raw_chunk_texts": {
            "encodes": "the chunk texts (what a chunk-embedding pipeline encodes)",
            "texts": len(chunk_texts), "chars": sum(len(t) for t in chunk_texts),
            "seconds": round(chunk_wall, 2), "cpu_seconds": round(chunk_cpu, 2),
            "chunks_per_s": chunk_rate,
        },
        "encoder_same_texts": {
            "encodes": f"the same sentences and titles, one call to citeqa's encoder "
                       f"({inner.encoder})",
            "seconds": round(encoder_wall, 2), "cpu_seconds": round(encoder_cpu, 2),
            "chunks_per_s": _rate(len(chunks), encoder_wall),
        },
        "ratio_vs_encoder_same_texts": (round(ours_rate / _rate(len(chunks), encoder_wall), 3)
                                        if encoder_wall else None),
        "ratio_vs_raw_same_texts": round(ours_rate / same_rate, 3) if same_rate else None,
        "ratio_vs_raw_chunk_texts": round(ours_rate / chunk_rate, 3) if chunk_rate else None,
    }
    if embedder.texts != len(texts):
        result["note"] = (f"citeqa encoded {embedder.texts} texts, the replica of its rule "
                          f"{len(texts)}: the raw comparison may not be like for like")
    return IngestCorpus(name, documents, chunks, settings, result)


def langchain_vs_citeqa(corpus: IngestCorpus, work: Path, n_questions: int, warmup: int
                        ) -> dict[str, Any]:
    """The LangChain-tutorial ingest and similarity_search against citeqa, same chunks."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document as LcDocument
    from langchain_huggingface import HuggingFaceEmbeddings

    from citeqa import Citeqa

    settings = corpus.settings
    titles = {document.id: document.title for document in corpus.documents}
    docs = [LcDocument(page_content=chunk.text,
                       metadata={"doc_id": chunk.doc_id, "start": chunk.start, "end": chunk.end,
                                 "title": titles[chunk.doc_id]})
            for chunk in corpus.chunks]
    location = resolve_model_location(settings.embedding_model)
    embeddings = HuggingFaceEmbeddings(model_name=location)
    embeddings.embed_query("warm up the model")
    wall, cpu = time.perf_counter(), time.process_time()
    vectorstore = Chroma.from_documents(docs, embeddings, collection_name="perf",
                                        persist_directory=str(work / f"langchain-{corpus.name}"))
    lc_wall, lc_cpu = time.perf_counter() - wall, time.process_time() - cpu

    services = Citeqa.build(settings)
    ids = {document.id for document in corpus.documents}
    asked = questions((corpus.name,), prefer_docs=ids)[:warmup + n_questions]
    for question in asked[:warmup]:
        vectorstore.similarity_search(question, k=5)
        services.assistant.ask(question, collection=COLLECTION)
        services.assistant.search(question, collection=COLLECTION)
    lc_ms: list[float] = []
    ask_ms: list[float] = []
    search_ms: list[float] = []
    # In turn, question by question, so that a change in machine load hits all three alike.
    for question in asked[warmup:]:
        started = time.perf_counter()
        vectorstore.similarity_search(question, k=5)
        lc_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        services.assistant.ask(question, collection=COLLECTION)
        ask_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        services.assistant.search(question, collection=COLLECTION, top_k=5)
        search_ms.append((time.perf_counter() - started) * 1000)

    ours = corpus.result["citeqa"]
    lc_rate = _rate(len(docs), lc_wall)
    lc = latency_summary(lc_ms)
    ask = latency_summary(ask_ms)
    search = latency_summary(search_ms)

    def ratio(a: float | int | None, b: float | int | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    return {
        "set": corpus.name, "documents": len(corpus.documents), "chunks": len(docs),
        "langchain": {
            "pipeline": "Chroma.from_documents(chunks, HuggingFaceEmbeddings(model_name="
                        "<same model folder>)), persisted; similarity_search(q, k=5)",
            "encodes": "the chunk texts (sentence-transformers' default batch size)",
            "ingest_seconds": round(lc_wall, 2), "ingest_cpu_seconds": round(lc_cpu, 2),
            "chunks_per_s": lc_rate, "query": lc,
        },
        "citeqa": {"chunks_per_s": ours["chunks_per_s"], "ingest_seconds": ours["seconds"],
                   "ask": ask, "search_top5": search},
        "ratios": {
            "ingest_chunks_per_s_citeqa_over_langchain": ratio(ours["chunks_per_s"], lc_rate),
            "ask_p50_citeqa_over_langchain": ratio(ask["p50_ms"], lc["p50_ms"]),
            "ask_p95_citeqa_over_langchain": ratio(ask["p95_ms"], lc["p95_ms"]),
            "search_p50_citeqa_over_langchain": ratio(search["p50_ms"], lc["p50_ms"]),
        },
    }
