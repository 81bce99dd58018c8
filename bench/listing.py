"""Time and peak memory of listing a collection's documents, the whole list at once (as
`GET /v1/documents` did before paging) against one page and against every page in turn.

Reads a built catalog read-only (never writes to it). Each mode runs in a fresh process so its
peak RSS is its own:

    python -m bench.listing bench/.data/perf/local-100000/catalog.sqlite3 perf
"""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from index.catalog import Catalog
from index.schema import Session
from server.schemas import DocumentList, DocumentSummary

MODES = ("whole", "page", "every-page")


class _ReadOnlyCatalog(Catalog):
    """The catalog's queries over a SQLite file opened read-only."""

    id = "read-only"
    analyser_version = 0

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    @property
    def location(self) -> str:
        """The file read."""
        return "read-only"

    def write_lock(self) -> AbstractContextManager[object]:
        """Never used: nothing is written."""
        raise NotImplementedError

    def _connect(self) -> Session:
        return self._db  # type: ignore[return-value]

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        raise NotImplementedError
        yield self._db  # type: ignore[unreachable]


def run(path: Path, collection: str, mode: str) -> dict[str, object]:
    """List in one mode; its time, peak RSS and the size of the JSON body."""
    catalog = _ReadOnlyCatalog(path)
    started = time.perf_counter()
    listed = 0
    body = 0
    if mode == "whole":
        documents = catalog.documents(collection)
        text = DocumentList(collection=collection, total=len(documents),
                            documents=[DocumentSummary.of(d) for d in documents]
                            ).model_dump_json()
        listed, body = len(documents), len(text)
    else:
        cursor = None
        while True:
            page = catalog.document_page(collection, limit=100 if mode == "page" else 1000,
                                         cursor=cursor)
            text = DocumentList(collection=collection, total=page.total,
                                next_cursor=page.next_cursor,
                                documents=[DocumentSummary.listed(d) for d in page.documents]
                                ).model_dump_json()
            listed += len(page.documents)
            body = max(body, len(text))
            cursor = page.next_cursor
            if mode == "page" or cursor is None:
                break
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "documents": listed, "seconds": round(seconds, 3),
            "peak_rss_mb": round(peak_mb), "largest_body_bytes": body}


def main() -> None:
    """Each mode in its own process, printed as JSON lines."""
    path, collection = Path(sys.argv[1]), sys.argv[2]
    if len(sys.argv) > 3:
        print(json.dumps(run(path, collection, sys.argv[3])))
        return
    for mode in MODES:
        subprocess.run([sys.executable, "-m", "bench.listing", str(path), collection, mode],
                       check=True)


if __name__ == "__main__":
    main()
