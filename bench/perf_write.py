"""One-document writes against a running `citeqa serve`: upload, then find it, then delete it.

Each round sends one new article (three short paragraphs, about 120 words, one made-up word
only it holds) with `POST /v1/documents` and times:

- **write**: the upload's response, which comes once the catalog has committed the document
  (its vectors, chunks and sentence vectors written);
- **visible**: from sending the upload until `POST /v1/search` for the made-up word first returns
  the document among its five passages, so BM25's catch-up on the write is included (the
  search that follows a write brings the lexical index up to the new catalog version; the
  word is BM25's only match, while the vector searches may rank other chunks above it);
- **delete**: `DELETE /v1/documents/{id}` afterwards, which leaves the index as it was.

Rounds are sequential; the first is a warm-up and is not counted. Used by `bench.performance`
(`--only write`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import httpx

PARAGRAPHS = (
    "The harbour board met on Tuesday to settle the winter timetable for the island ferry, "
    "after a summer in which the {word} crossing ran late on most evenings.",
    "Skippers asked for a later last sailing on Fridays; the board agreed to try it for six "
    "weeks and to count the passengers on every trip before deciding for good.",
    "A new ticket office will open beside the fish market in the spring, replacing the hut "
    "that flooded twice last year, and the old slipway will be repaired in March.",
)
# Tries of the search before a write is reported as never visible (each takes milliseconds).
MAX_SEARCHES = 500


def one_document_writes(base_url: str, rounds: int) -> dict[str, Any]:
    """Time `rounds` one-document writes (after one warm-up) and their visibility and delete."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    samples: dict[str, list[float]] = {"write": [], "visible": [], "delete": []}
    never_visible = 0
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for round_number in range(rounds + 1):
            timed = _one_round(client)
            if round_number == 0:
                continue
            for name, seconds in timed.items():
                if seconds is None:
                    never_visible += 1
                else:
                    samples[name].append(seconds)
    summary: dict[str, Any] = {"rounds": rounds, "never_visible": never_visible,
                               "words_per_document": len(" ".join(PARAGRAPHS).split())}
    for name, values in samples.items():
        if values:
            summary[f"{name}_p50_s"] = round(statistics.median(values), 3)
            summary[f"{name}_max_s"] = round(max(values), 3)
    return summary


def _one_round(client: httpx.Client) -> dict[str, float | None]:
    word = "zq" + uuid.uuid4().hex[:10]
    doc_id = f"bench-one-write-{word}"
    document = {"id": doc_id, "title": f"Ferry timetable {word}",
                "text": "\n\n".join(p.format(word=word) for p in PARAGRAPHS)}
    started = time.perf_counter()
    response = client.post("/v1/documents", json={"documents": [document]})
    response.raise_for_status()
    written = time.perf_counter() - started
    visible: float | None = None
    for _ in range(MAX_SEARCHES):
        found = client.post("/v1/search", json={"query": word, "top_k": 5})
        found.raise_for_status()
        if any(passage["doc_id"] == doc_id for passage in found.json()["passages"]):
            visible = time.perf_counter() - started
            break
    started = time.perf_counter()
    client.delete(f"/v1/documents/{doc_id}").raise_for_status()
    deleted = time.perf_counter() - started
    return {"write": written, "visible": visible, "delete": deleted}
