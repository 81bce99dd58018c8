"""Corpora and questions for the performance benchmarks, read from ../shared/eval.

Nothing here copies evaluation text into the project: documents are read from the shared
files at run time and only ever written to temporary folders or to the git-ignored
`bench/.data`.

Two kinds of corpus:

- the first N documents of one evaluation set, as they are (ingestion speed, LangChain);
- a synthetic corpus of a given number of chunks (query latency, load, memory): first every
  document of SciFact and RealTimeQA (interleaved), then remixes of them: each remix document
  is the sentences of two source documents, shuffled, under the first one's title and id
  prefix `mixK:`. Remixes make distinct chunks (and chunk vectors) from the same sentences, so
  the sentence vectors of a large synthetic corpus repeat (about once per remix round).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.documents import Document
from core.settings import Settings
from core.text import sentence_spans
from index.chunking import Chunker
from index.loaders import record_document

HERE = Path(__file__).resolve().parent
SHARED_EVAL = HERE.parent.parent / "shared" / "eval"
SETS = ("scifact", "realtimeqa")

Record = dict[str, Any]


def corpus_path(name: str) -> Path:
    """The corpus file of an evaluation set."""
    return SHARED_EVAL / name / "corpus.jsonl.gz"


def questions_path(name: str) -> Path:
    """The questions file of an evaluation set (`.jsonl` or `.jsonl.gz`)."""
    plain = SHARED_EVAL / name / "questions.jsonl"
    return plain if plain.exists() else SHARED_EVAL / name / "questions.jsonl.gz"


def read_jsonl(path: Path, limit: int | None = None) -> list[Record]:
    """The JSON objects of a JSONL file, optionally gzipped; the first `limit` of them."""
    opener = gzip.open if path.suffix == ".gz" else open
    records: list[Record] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(records) >= limit:
                break
            if line.strip():
                records.append(json.loads(line))
    return records


def write_jsonl(records: list[Record], path: Path) -> Path:
    """Write records as an ingest JSONL file (for temporary folders only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def questions(sets: tuple[str, ...] = SETS, *, prefer_docs: set[str] | None = None
              ) -> list[str]:
    """Questions of the sets, interleaved; those whose gold document is in `prefer_docs` first."""
    per_set = [read_jsonl(questions_path(name)) for name in sets]
    mixed: list[Record] = []
    for position in range(max(len(records) for records in per_set)):
        mixed.extend(records[position] for records in per_set if position < len(records))
    if prefer_docs is not None:
        mixed.sort(key=lambda q: not set(q.get("gold_doc_ids", [])) & prefer_docs)
    return [str(q["question"]) for q in mixed]


def interleaved_sources() -> list[Record]:
    """Every document of both sets, alternating, each id prefixed with its set's name."""
    per_set = [[{**r, "id": f"{name}:{r['id']}"} for r in read_jsonl(corpus_path(name))]
               for name in SETS]
    mixed: list[Record] = []
    for position in range(max(len(records) for records in per_set)):
        mixed.extend(records[position] for records in per_set if position < len(records))
    return mixed


def _sentences(record: Record) -> list[str]:
    text = str(record["text"])
    return [text[start:end] for start, end in sentence_spans(text)]


def _remixes(sources: list[Record]) -> Iterator[Record]:
    """Endless rounds of remix documents; round K pairs every source with a seeded partner."""
    round_number = 0
    while True:
        round_number += 1
        rng = random.Random(round_number)
        partners = list(range(len(sources)))
        rng.shuffle(partners)
        for index, record in enumerate(sources):
            partner = sources[partners[index]]
            if partner is record:
                partner = sources[(index + 1) % len(sources)]
            sentences = _sentences(record) + _sentences(partner)
            rng.shuffle(sentences)
            yield {**record, "id": f"mix{round_number}:{record['id']}",
                   "text": " ".join(sentences)}


def synthetic_documents(target_chunks: int, settings: Settings) -> tuple[list[Document], int]:
    """Documents whose chunks (as citeqa splits them) just reach `target_chunks`; and that count.

    The same target always gives the same documents, and a smaller target a prefix of a larger
    one's.
    """
    chunker = Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)
    sources = interleaved_sources()
    documents: list[Document] = []
    chunks = 0

    def stream() -> Iterator[Record]:
        yield from sources
        yield from _remixes(sources)

    for record in stream():
        if chunks >= target_chunks:
            break
        document = record_document(record)
        documents.append(document)
        chunks += len(chunker.split(document))
    return documents, chunks
