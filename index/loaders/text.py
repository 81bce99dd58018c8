"""Plain text and Markdown: decoding a file's bytes (UTF-8, or UTF-16/32 with a byte-order mark;
binary files and UTF-16 without a mark are refused with the reason), a text document titled by
its first short line, and a Markdown document with optional `key: value` front matter, titled
by its first heading.
"""

from __future__ import annotations

import re

from core.documents import Document, SkippedSource
from index.loaders.common import _first_line_title, _link, _normalise_newlines

# Byte-order marks of the Unicode encodings other than UTF-8 that a text file may be saved in
# (Windows "Unicode" text is UTF-16 with a BOM). The 4-byte UTF-32 marks come first: the
# UTF-32-LE one begins with the UTF-16-LE one.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
)

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", re.DOTALL)
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _decode(name: str, data: bytes, doc_id: str) -> str | SkippedSource:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                return SkippedSource(
                    name, f"broken {encoding.upper()} text (starts with its byte-order mark, "
                    f"but byte {exc.start + len(bom)} is not {encoding.upper()}); convert it "
                    "to UTF-8 and ingest again", doc_id)
    head = data[:8192]
    if b"\x00" in head:
        if _looks_like_utf16(head):
            return SkippedSource(
                name, "UTF-16 text without a byte-order mark; save it as UTF-8 and ingest again",
                doc_id)
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


def _looks_like_utf16(head: bytes) -> bool:
    """Mostly-ASCII UTF-16: one of every two bytes is NUL, and the other almost never is."""
    if len(head) < 8:
        return False
    even, odd = head[0::2], head[1::2]
    for zeros, other in ((even, odd), (odd, even)):
        if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.05 * len(other):
            return True
    return False


def text_document(doc_id: str, text: str) -> Document:
    """A plain-text article: the first short line is its title."""
    text = _normalise_newlines(text)
    if not text.strip():
        raise ValueError("empty document (no text)")
    return Document(id=doc_id, text=text, title=_first_line_title(doc_id, text))


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
        url=_link(fields.pop("url", None) or None),
        date=fields.pop("date", None) or None,
        source=fields.pop("source", None) or None,
        metadata=fields,
    )
