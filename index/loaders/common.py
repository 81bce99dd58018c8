"""What the format modules share: the `Loaded` type, the cap on extracted text and the helpers
that enforce the parsing caps (`_OverLimit`, `_ElementCounter`, `_count_elements`), and small
text helpers (newlines, first-line titles, links, describing an exception). Each format's own
caps live in its module (`pdf`, `docx`, `html`); the worker's time and memory limits are in
`index.parsing`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lxml import etree

from core.documents import Document, SkippedSource

Loaded = Document | SkippedSource

# Caps on what one PDF, DOCX or HTML file may cost to parse: this one bounds them all, the
# others are in the format modules.
# Characters of text one file may yield (about 2,500 pages of prose).
MAX_EXTRACTED_CHARS = 5_000_000
# Pieces an lxml parser is fed in, so a big file is not copied whole again.
_CHUNK = 1 << 20
_WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Longer "first lines" are a paragraph, not a title.
_MAX_TITLE_CHARS = 200


class _OverLimit(ValueError):
    """A file is refused for breaking one of the parsing caps; the message names the cap."""


def _check_chars(count: int) -> None:
    if count > MAX_EXTRACTED_CHARS:
        raise _OverLimit(f"its text is longer than {MAX_EXTRACTED_CHARS:,} characters (the "
                         "limit for one file); split it into smaller files")


class _ElementCounter:
    """An lxml parser target that only counts elements, raising once there are too many.

    Counting this way builds no tree, so a file of millions of elements costs no memory.
    """

    def __init__(self, what: str, max_elements: int, max_paragraphs: int | None = None
                 ) -> None:
        self.what = what
        self.max_elements = max_elements
        self.max_paragraphs = max_paragraphs
        self.elements = 0
        self.paragraphs = 0

    def start(self, tag: str, attrib: Any) -> None:
        self.elements += 1
        if self.elements > self.max_elements:
            raise _OverLimit(f"{self.what} has more than {self.max_elements:,} elements (the "
                             "limit); split it into smaller files")
        if self.max_paragraphs is not None and tag == f"{_WORD_NS}p":
            self.paragraphs += 1
            if self.paragraphs > self.max_paragraphs:
                raise _OverLimit(f"{self.what} has more than {self.max_paragraphs:,} "
                                 "paragraphs (the limit); split it into smaller files")

    def close(self) -> None:
        pass


def _count_elements(parser: Any, chunks: Iterable[bytes | str]) -> None:
    """Feed `chunks` to an lxml parser whose target is an `_ElementCounter`.

    A cap the target raises comes out as itself; syntax errors are left to the parser that
    then reads the file for real, which reports them as it always has.
    """
    try:
        for chunk in chunks:
            parser.feed(chunk)
        parser.close()
    except etree.LxmlError:
        pass


def _first_line_title(doc_id: str, text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= _MAX_TITLE_CHARS else Path(doc_id).stem


def _describe(exc: Exception) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _link(url: str | None) -> str | None:
    """A document's `url`, if it is an http(s) link; anything else is refused.

    The page and API clients render it as a link, so `javascript:` or `data:` would run
    script in whoever clicks the citation.
    """
    if url is None:
        return None
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"'url' must be an http:// or https:// link, not {url[:40]!r}")
    return url


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
