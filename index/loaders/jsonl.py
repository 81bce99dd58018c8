"""JSONL documents, one JSON object per line, optionally gzip-compressed: decompression bounded
by a byte limit (so a tiny gzip cannot fill the memory), and `record_document`, which turns one
object into a `Document` (also used for JSON bodies elsewhere); a bad line is skipped with its
line number and the rest of the file is still read.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

from core.documents import Document, SkippedSource
from index.loaders.common import Loaded, _link

# Decompressed JSONL larger than this is refused, so a tiny gzip cannot fill the memory; callers
# that know their size limit (uploads, `load_file`) pass it, and it bounds decompression too.
MAX_DECOMPRESSED_BYTES = 2 * 1024**3
_KNOWN_FIELDS = {"id", "title", "text", "url", "date", "source"}


class _TooLargeWhenDecompressed(ValueError):
    pass


def _gunzip_limited(data: bytes, limit: int) -> bytes:
    """The decompressed bytes; stops reading (and raises) as soon as they pass `limit`."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read(limit + 1)
    if len(out) > limit:
        raise _TooLargeWhenDecompressed(
            f"decompresses to more than {limit:,} bytes, over the {limit:,}-byte limit "
            "(CITEQA_MAX_UPLOAD_BYTES); split it into smaller files"
        )
    return out


def _jsonl_documents(name: str, text: str) -> Iterator[Loaded]:
    if not text.strip():
        yield SkippedSource(name, "empty JSONL file (no lines, so no documents)")
        return
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name} line {line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SkippedSource(where, f"invalid JSON ({exc.msg})")
            continue
        try:
            yield record_document(record)
        except ValueError as exc:
            doc_id = record.get("id") if isinstance(record, dict) else None
            yield SkippedSource(where, str(exc), str(doc_id) if doc_id is not None else None)


def record_document(record: Any) -> Document:
    """A document from a JSON object `{"id", "title", "text", "url"?, "date"?, "source"?, ...}`."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object with 'id' and 'text'")
    doc_id = record.get("id")
    if doc_id is None or not str(doc_id).strip():
        raise ValueError("missing 'id'")
    # An object, a list or true/false as an id is a mistake, not a name to store.
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int | float):
        raise ValueError(f"'id' must be a string or a number, not {json.dumps(doc_id)[:80]}")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"document {doc_id!r} has no 'text'")
    extra = {k: v for k, v in record.items() if k not in _KNOWN_FIELDS}
    return Document(
        id=str(doc_id),
        text=text,
        title=_optional_str(record.get("title")) or "",
        url=_link(_optional_str(record.get("url"))),
        date=_optional_str(record.get("date")),
        source=_optional_str(record.get("source")),
        metadata=extra,
    )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
