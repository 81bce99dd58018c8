"""Loaders: turn files (and uploads) into `Document`s, and unreadable ones into `SkippedSource`s.

Supported: `.txt`, `.md`/`.markdown`, `.html`/`.htm` (the `<article>`/`<main>` text when there
is one), `.pdf` (text page by page, with `pypdf`), `.docx` (paragraphs and table rows, with
`python-docx`), and `.jsonl` (optionally `.gz`) with one document per line. Directories are
walked recursively, in sorted order so runs are repeatable. Web pages are fetched by
`index.fetch`, which hands the body to `load_bytes`.

PDF, DOCX and HTML are parsed by `index.parsing` in a worker process with a time and memory
limit, and within caps (pages, decompressed bytes, elements, extracted characters),
so a small hostile file is refused with the limit it broke instead of freezing the server.

This package holds the entry points (`load_sources`, `load_file`, `load_bytes`,
`parse_untrusted`) and the suffix table; each format family has its own module (`text`,
`jsonl`, `html`, `pdf`, `docx`), and `common` holds what they share. The names callers use
are re-exported here.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.documents import Document, SkippedSource
from index.loaders.common import MAX_EXTRACTED_CHARS, Loaded
from index.loaders.docx import (
    MAX_DOCX_ELEMENTS,
    MAX_DOCX_PARAGRAPHS,
    MAX_DOCX_RATIO,
    MAX_DOCX_XML_BYTES,
    docx_document,
)
from index.loaders.html import MAX_HTML_ELEMENTS, html_document
from index.loaders.jsonl import (
    MAX_DECOMPRESSED_BYTES,
    _gunzip_limited,
    _jsonl_documents,
    _TooLargeWhenDecompressed,
    record_document,
)
from index.loaders.pdf import (
    MAX_PDF_CONTENT_BYTES,
    MAX_PDF_PAGES,
    MAX_PDF_STREAM_BYTES,
    pdf_document,
)
from index.loaders.text import _decode, markdown_document, text_document
from index.parsing import parse_isolated

__all__ = [
    "DOCX_SUFFIXES", "HTML_SUFFIXES", "JSONL_SUFFIXES", "MARKDOWN_SUFFIXES",
    "MAX_DECOMPRESSED_BYTES", "MAX_DOCX_ELEMENTS", "MAX_DOCX_PARAGRAPHS", "MAX_DOCX_RATIO",
    "MAX_DOCX_XML_BYTES", "MAX_EXTRACTED_CHARS", "MAX_HTML_ELEMENTS", "MAX_PDF_CONTENT_BYTES",
    "MAX_PDF_PAGES", "MAX_PDF_STREAM_BYTES", "PDF_SUFFIXES", "SUPPORTED_SUFFIXES",
    "TEXT_SUFFIXES", "Document", "Loaded", "SkippedSource", "docx_document", "html_document",
    "load_bytes", "load_file", "load_sources", "markdown_document", "parse_untrusted",
    "pdf_document", "record_document", "suffix_of", "text_document", "unsupported",
]

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".jsonl.gz"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
SUPPORTED_SUFFIXES = (TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES
                      | PDF_SUFFIXES | DOCX_SUFFIXES)


def suffix_of(name: str) -> str:
    """The loader-relevant suffix of a file name (`.jsonl.gz` counts as one)."""
    lower = name.lower()
    if lower.endswith(".jsonl.gz"):
        return ".jsonl.gz"
    return Path(lower).suffix


def unsupported(name: str, doc_id: str | None = None) -> SkippedSource:
    """A file skipped for its type, with the types that are read."""
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    return SkippedSource(name, f"unsupported file type {suffix_of(name) or '(none)'}; use "
                         f"{supported}", doc_id)


def load_sources(sources: Iterable[str | Path], *, max_bytes: int) -> Iterator[Loaded]:
    """Yield a document or a skip reason for every file under the given paths."""
    for source in sources:
        path = Path(source)
        if path.is_dir():
            root = path.resolve()
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in file.relative_to(path).parts):
                    continue
                if suffix_of(file.name) not in SUPPORTED_SUFFIXES:
                    # Said, not silent: a folder of .csv files would otherwise ingest nothing
                    # without a word. No doc_id: a file never read holds no document to keep.
                    yield unsupported(str(file))
                    continue
                doc_id = file.relative_to(path).as_posix()
                if not _stays_inside(file, root):
                    # Ingesting a folder must not read what a symlink in it points to
                    # elsewhere (a planted link to /etc/passwd would become a document).
                    yield SkippedSource(
                        str(file), "a symlink to a file outside the folder being ingested; "
                        "not followed (copy the file into the folder to ingest it)", doc_id)
                    continue
                yield from load_file(file, doc_id=doc_id, max_bytes=max_bytes)
        elif path.is_file():
            yield from load_file(path, doc_id=path.name, max_bytes=max_bytes)
        else:
            yield SkippedSource(str(path), "no such file or directory")


def _stays_inside(file: Path, root: Path) -> bool:
    """True when `file`, symlinks resolved, is under `root` (itself already resolved)."""
    try:
        return file.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a symlink loop, or a link that vanished meanwhile
        return False


def load_file(path: Path, *, doc_id: str, max_bytes: int) -> Iterator[Loaded]:
    """Load one file; a problem becomes a `SkippedSource` naming the file."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            yield SkippedSource(
                str(path), f"file is {size:,} bytes, over the {max_bytes:,}-byte limit", doc_id
            )
            return
        data = path.read_bytes()
    except OSError as exc:
        yield SkippedSource(str(path), f"cannot read file: {exc.strerror or exc}", doc_id)
        return
    yield from load_bytes(str(path), data, doc_id=doc_id, max_bytes=max_bytes)


def load_bytes(name: str, data: bytes, *, doc_id: str, max_bytes: int | None = None
               ) -> Iterator[Loaded]:
    """Parse file contents by the suffix of `name`; JSONL may yield many documents.

    `max_bytes` bounds what a compressed file may expand to (default
    `MAX_DECOMPRESSED_BYTES`), so a small upload cannot unpack into gigabytes.
    """
    suffix = suffix_of(name)
    if suffix not in SUPPORTED_SUFFIXES:
        yield unsupported(name, doc_id)
        return
    if suffix == ".jsonl.gz":
        limit = MAX_DECOMPRESSED_BYTES if max_bytes is None else max_bytes
        try:
            data = _gunzip_limited(data, limit)
        except _TooLargeWhenDecompressed as exc:
            yield SkippedSource(name, str(exc), doc_id)
            return
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            yield SkippedSource(name, f"broken gzip file: {exc}", doc_id)
            return
    # Off the caller's process: see `index.parsing`.
    if suffix in PDF_SUFFIXES:
        yield parse_isolated("pdf", name, data, doc_id=doc_id)
        return
    if suffix in DOCX_SUFFIXES:
        yield parse_isolated("docx", name, data, doc_id=doc_id)
        return
    text_or_skip = _decode(name, data, doc_id)
    if isinstance(text_or_skip, SkippedSource):
        yield text_or_skip
        return
    text = text_or_skip
    if suffix in JSONL_SUFFIXES:
        yield from _jsonl_documents(name, text)
        return
    if suffix in HTML_SUFFIXES:
        yield parse_isolated("html", name, text, doc_id=doc_id)
        return
    try:
        if suffix in MARKDOWN_SUFFIXES:
            document = markdown_document(doc_id, text)
        else:
            document = text_document(doc_id, text)
    except ValueError as exc:
        yield SkippedSource(name, str(exc), doc_id)
        return
    yield document


def parse_untrusted(kind: str, name: str, payload: bytes | str, *, doc_id: str) -> Loaded:
    """Parse a PDF, DOCX (bytes) or HTML (text) file here, within the caps; never raises.

    `index.parsing` runs this in its worker process; `load_bytes` is what callers want.
    """
    # A refused id or title (InvalidDocument is a ValueError) skips the file like any other
    # unreadable one, so a folder's ingest goes on past it.
    try:
        if kind == "pdf" and isinstance(payload, bytes):
            return pdf_document(name, payload, doc_id=doc_id)
        if kind == "docx" and isinstance(payload, bytes):
            return docx_document(name, payload, doc_id=doc_id)
        if kind == "html" and isinstance(payload, str):
            return html_document(doc_id, payload)
    except ValueError as exc:
        return SkippedSource(name, str(exc), doc_id)
    raise TypeError(f"cannot parse {kind!r} from {type(payload).__name__}")
