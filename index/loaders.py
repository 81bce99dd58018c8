"""Loaders: turn files (and uploads) into `Document`s, and unreadable ones into `SkippedSource`s.

Supported: `.txt`, `.md`/`.markdown`, `.html`/`.htm`, and `.jsonl` (optionally `.gz`) with one
document per line. Directories are walked recursively, in sorted order so runs are repeatable.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from index.models import Document, SkippedSource

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".jsonl.gz"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES

# Decompressed JSONL larger than this is refused, so a tiny gzip cannot fill the memory.
MAX_DECOMPRESSED_BYTES = 2 * 1024**3

Loaded = Document | SkippedSource

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", re.DOTALL)
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_DROPPED_HTML_TAGS = (
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template",
    "svg", "iframe", "button",
)
_HTML_BLOCKS = (
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dt", "dd",
    "figcaption", "caption",
)
_KNOWN_FIELDS = {"id", "title", "text", "url", "date", "source"}


def suffix_of(name: str) -> str:
    """The loader-relevant suffix of a file name (`.jsonl.gz` counts as one)."""
    lower = name.lower()
    if lower.endswith(".jsonl.gz"):
        return ".jsonl.gz"
    return Path(lower).suffix


def load_sources(sources: Iterable[str | Path], *, max_bytes: int) -> Iterator[Loaded]:
    """Yield a document or a skip reason for every file under the given paths."""
    for source in sources:
        path = Path(source)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in file.relative_to(path).parts):
                    continue
                if suffix_of(file.name) not in SUPPORTED_SUFFIXES:
                    continue
                yield from load_file(file, doc_id=file.relative_to(path).as_posix(),
                                     max_bytes=max_bytes)
        elif path.is_file():
            yield from load_file(path, doc_id=path.name, max_bytes=max_bytes)
        else:
            yield SkippedSource(str(path), "no such file or directory")


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
    yield from load_bytes(str(path), data, doc_id=doc_id)


def load_bytes(name: str, data: bytes, *, doc_id: str) -> Iterator[Loaded]:
    """Parse file contents by the suffix of `name`; JSONL may yield many documents."""
    suffix = suffix_of(name)
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        yield SkippedSource(name, f"unsupported file type {suffix or '(none)'}; use {supported}",
                            doc_id)
        return
    if suffix == ".jsonl.gz":
        try:
            data = _gunzip_limited(data)
        except (OSError, EOFError, ValueError) as exc:
            yield SkippedSource(name, f"broken gzip file: {exc}", doc_id)
            return
    text_or_skip = _decode(name, data, doc_id)
    if isinstance(text_or_skip, SkippedSource):
        yield text_or_skip
        return
    text = text_or_skip
    if suffix in JSONL_SUFFIXES:
        yield from _jsonl_documents(name, text)
        return
    try:
        if suffix in HTML_SUFFIXES:
            document = html_document(doc_id, text)
        elif suffix in MARKDOWN_SUFFIXES:
            document = markdown_document(doc_id, text)
        else:
            document = text_document(doc_id, text)
    except ValueError as exc:
        yield SkippedSource(name, str(exc), doc_id)
        return
    yield document


def _gunzip_limited(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read(MAX_DECOMPRESSED_BYTES + 1)
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise ValueError(f"decompresses to more than {MAX_DECOMPRESSED_BYTES:,} bytes")
    return out


def _decode(name: str, data: bytes, doc_id: str) -> str | SkippedSource:
    if b"\x00" in data[:8192]:
        return SkippedSource(name, "binary file (contains NUL bytes), not text", doc_id)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return SkippedSource(
            name,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8 and ingest again",
            doc_id,
        )


def text_document(doc_id: str, text: str) -> Document:
    """A plain-text article: the first short line is its title."""
    text = _normalise_newlines(text)
    if not text.strip():
        raise ValueError("empty document (no text)")
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first_line if len(first_line) <= 200 else Path(doc_id).stem
    return Document(id=doc_id, text=text, title=title)


def markdown_document(doc_id: str, text: str) -> Document:
    """A Markdown article: optional `key: value` front matter, title from the first heading."""
    text = _normalise_newlines(text)
    fields: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                fields[key.strip().lower()] = value.strip().strip("\"'")
        text = text[match.end():]
    if not text.strip():
        raise ValueError("empty document (no text)")
    heading = _MD_HEADING.search(text)
    title = fields.pop("title", "") or (heading.group(1).strip() if heading else "")
    if not title:
        title = text_document(doc_id, text).title
    return Document(
        id=doc_id,
        text=text,
        title=title,
        url=fields.pop("url", None) or None,
        date=fields.pop("date", None) or None,
        source=fields.pop("source", None) or None,
        metadata=fields,
    )


def html_document(doc_id: str, html: str) -> Document:
    """An HTML page: its main text (scripts, styles, navigation dropped), title from the page."""
    soup = BeautifulSoup(html, "lxml")
    if soup.find() is None:
        raise ValueError("broken HTML: no elements found")
    title_tag = soup.find("title")
    h1 = soup.find("h1")
    title = (title_tag.get_text(" ", strip=True) if title_tag else "") or (
        h1.get_text(" ", strip=True) if h1 else ""
    )
    for tag in soup.find_all(_DROPPED_HTML_TAGS):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    blocks = []
    for element in root.find_all(_HTML_BLOCKS):
        # Only the innermost block elements, so nested lists are not repeated.
        if element.find(_HTML_BLOCKS):
            continue
        block = " ".join(element.get_text(" ", strip=True).split())
        if block:
            blocks.append(block)
    if not blocks:
        loose = " ".join(root.get_text(" ", strip=True).split())
        if loose:
            blocks.append(loose)
    text = "\n\n".join(blocks)
    if not text.strip():
        raise ValueError("broken or empty HTML: no readable text found")
    return Document(id=doc_id, text=text, title=title or Path(doc_id).stem)


def _jsonl_documents(name: str, text: str) -> Iterator[Loaded]:
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
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"document {doc_id!r} has no 'text'")
    extra = {k: v for k, v in record.items() if k not in _KNOWN_FIELDS}
    return Document(
        id=str(doc_id),
        text=text,
        title=_optional_str(record.get("title")) or "",
        url=_optional_str(record.get("url")),
        date=_optional_str(record.get("date")),
        source=_optional_str(record.get("source")),
        metadata=extra,
    )


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
