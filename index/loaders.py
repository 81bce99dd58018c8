"""Loaders: turn files (and uploads) into `Document`s, and unreadable ones into `SkippedSource`s.

Supported: `.txt`, `.md`/`.markdown`, `.html`/`.htm` (the `<article>`/`<main>` text when there
is one), `.pdf` (text page by page, with `pypdf`), `.docx` (paragraphs and table rows, with
`python-docx`), and `.jsonl` (optionally `.gz`) with one document per line. Directories are
walked recursively, in sorted order so runs are repeatable. Web pages are fetched by
`index.fetch`, which hands the body to `load_bytes`.

PDF, DOCX and HTML are parsed by `index.parsing` in a worker process with a time and memory
limit, and within the caps below (pages, decompressed bytes, elements, extracted characters),
so a small hostile file is refused with the limit it broke instead of freezing the server.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docx
import pypdf
from bs4 import BeautifulSoup, Tag
from docx.table import Table
from lxml import etree

from index.models import Document, SkippedSource
from index.parsing import parse_isolated

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
JSONL_SUFFIXES = {".jsonl", ".jsonl.gz"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
SUPPORTED_SUFFIXES = (TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES
                      | PDF_SUFFIXES | DOCX_SUFFIXES)

# Decompressed JSONL larger than this is refused, so a tiny gzip cannot fill the memory; callers
# that know their size limit (uploads, `load_file`) pass it, and it bounds decompression too.
MAX_DECOMPRESSED_BYTES = 2 * 1024**3
# Byte-order marks of the Unicode encodings other than UTF-8 that a text file may be saved in
# (Windows "Unicode" text is UTF-16 with a BOM). The 4-byte UTF-32 marks come first: the
# UTF-32-LE one begins with the UTF-16-LE one.
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
)

Loaded = Document | SkippedSource

# Caps on what one PDF, DOCX or HTML file may cost to parse (the worker's time and memory
# limits are in `index.parsing`). Each is far above what an ordinary document needs.
MAX_PDF_PAGES = 2_000
# Decompressed bytes of any one PDF stream, and of all pages' content streams together (a
# stream drawn on many pages counts once per page: pypdf parses it once per page). pypdf
# parses content at about 1 MB a second, so the total keeps within the worker's time limit.
MAX_PDF_STREAM_BYTES = 10_000_000
MAX_PDF_CONTENT_BYTES = 25_000_000
# The XML parts of a .docx, unpacked; and how many times smaller than that a large part may be
# packed (ordinary XML packs 5-20 times; a zip bomb thousands).
MAX_DOCX_XML_BYTES = 50_000_000
MAX_DOCX_RATIO = 200
_DOCX_RATIO_FROM_BYTES = 5_000_000
MAX_DOCX_PARAGRAPHS = 200_000
MAX_DOCX_ELEMENTS = 2_000_000
MAX_HTML_ELEMENTS = 200_000
# Characters of text one file may yield (about 2,500 pages of prose).
MAX_EXTRACTED_CHARS = 5_000_000
# Pieces an lxml parser is fed in, so a big file is not copied whole again.
_CHUNK = 1 << 20
_WORD_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

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
# Longer "first lines" are a paragraph, not a title.
_MAX_TITLE_CHARS = 200
_DOCX_TITLE_STYLES = ("title", "heading")

# pypdf logs a warning for every quirk it repairs; they are noise for ingestion, so its loggers
# are raised to ERROR while any thread is reading a PDF, and restored when the last one is done.
_PYPDF_LOGGER = logging.getLogger("pypdf")
_pypdf_quiet_lock = threading.Lock()
_pypdf_quiet_depth = 0
_pypdf_saved_level = logging.NOTSET


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
            root = path.resolve()
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in file.relative_to(path).parts):
                    continue
                if suffix_of(file.name) not in SUPPORTED_SUFFIXES:
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
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        yield SkippedSource(name, f"unsupported file type {suffix or '(none)'}; use {supported}",
                            doc_id)
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


class _TooLargeWhenDecompressed(ValueError):
    pass


class _OverLimit(ValueError):
    """A file is refused for breaking one of the parsing caps; the message names the cap."""


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


def html_document(doc_id: str, html: str) -> Document:
    """An HTML page: its main text (scripts, styles, navigation dropped), title from the page."""
    # Count the elements first, in C and without a tree: BeautifulSoup spends ~50 us on each,
    # so a page of millions of tiny ones would take minutes.
    _count_elements(etree.HTMLParser(target=_ElementCounter("the HTML", MAX_HTML_ELEMENTS)),
                    (html[i:i + _CHUNK] for i in range(0, len(html), _CHUNK)))
    soup = BeautifulSoup(html, "lxml")
    if soup.find() is None:
        raise ValueError("broken HTML: no elements found")
    title = _html_title(soup)
    for tag in soup.find_all(_DROPPED_HTML_TAGS):
        tag.decompose()
    root = _html_main(soup)
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
    _check_chars(len(text))
    if not text.strip():
        raise ValueError("broken or empty HTML: no readable text found")
    return Document(id=doc_id, text=text, title=title or Path(doc_id).stem)


def _html_title(soup: BeautifulSoup) -> str:
    """`<title>`, else `og:title`, else the first `<h1>`."""
    title_tag = soup.find("title")
    if title_tag and (title := title_tag.get_text(" ", strip=True)):
        return title
    og = soup.find("meta", attrs={"property": "og:title"})
    og_title = " ".join(str(og.get("content") or "").split()) if isinstance(og, Tag) else ""
    if og_title:
        return og_title
    h1 = soup.find("h1")
    return h1.get_text(" ", strip=True) if h1 else ""


def _html_main(soup: BeautifulSoup) -> Tag | BeautifulSoup:
    """The main content: the longest `<article>`, else `<main>`, else the body.

    The longest article, because listing pages and comment threads hold many small ones.
    Containers left empty once navigation and scripts are dropped do not count.
    """
    articles = [a for a in soup.find_all("article") if a.get_text(strip=True)]
    if articles:
        return max(articles, key=lambda a: len(a.get_text(" ", strip=True)))
    main = soup.find("main")
    if isinstance(main, Tag) and main.get_text(strip=True):
        return main
    return soup.body or soup


def pdf_document(name: str, data: bytes, *, doc_id: str) -> Document | SkippedSource:
    """A PDF: its text page by page (pages separated by a blank line), title from its metadata.

    Broken, password-protected and image-only PDFs, and those over the caps (pages,
    decompressed bytes, characters), become a `SkippedSource`; this never raises.
    """
    with _quiet_pypdf(), pypdf.apply_configuration(
            pypdf.get_configuration().with_overwrites(**_PDF_LIMITS)):
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not _decrypt_with_empty_password(reader):
                return SkippedSource(
                    name, "the PDF is password-protected; save an unprotected copy", doc_id
                )
            if len(reader.pages) > MAX_PDF_PAGES:
                raise _OverLimit(f"the PDF has more than {MAX_PDF_PAGES:,} pages (the limit); "
                                 "split it into smaller files")
            pages = []
            content_bytes = chars = 0
            for page in reader.pages:
                # Measured before the text is extracted: parsing the content is the slow part.
                content_bytes += _pdf_content_bytes(page)
                if content_bytes > MAX_PDF_CONTENT_BYTES:
                    raise _OverLimit(
                        f"the PDF's page contents decompress to more than "
                        f"{MAX_PDF_CONTENT_BYTES:,} bytes (the limit); split it into smaller "
                        "files")
                page_text = _normalise_newlines(page.extract_text() or "").strip()
                if page_text:
                    chars += len(page_text)
                    _check_chars(chars)
                    pages.append(page_text)
            metadata_title = _pdf_metadata_title(reader)
        except _OverLimit as exc:
            return SkippedSource(name, str(exc), doc_id)
        except pypdf.errors.LimitReachedError as exc:
            return SkippedSource(
                name, "a stream in the PDF decompresses to more than "
                f"{MAX_PDF_STREAM_BYTES:,} bytes (the limit) ({_describe(exc)})", doc_id)
        # pypdf raises many exception types on malformed input (its own, ValueError, KeyError,
        # TypeError, ...); for an uploaded file they all mean the same thing to the user.
        except Exception as exc:
            return SkippedSource(name, f"not a readable PDF: {_describe(exc)}", doc_id)
    text = "\n\n".join(pages)
    if not text.strip():
        return SkippedSource(
            name, "the PDF has no extractable text (scanned images?); run OCR on it first", doc_id
        )
    return Document(id=doc_id, text=text, title=metadata_title or _first_line_title(doc_id, text))


# pypdf's own limits, lowered from its 75 MB defaults to the caps above.
_PDF_LIMITS = {
    "zlib_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "lzw_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "run_length_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "brotli_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "array_based_stream_maximum_output_length": MAX_PDF_STREAM_BYTES,
    "image_maximum_buffer_size": MAX_PDF_STREAM_BYTES,
    "stream_decoding_work_maximum_length": 2 * MAX_PDF_STREAM_BYTES,
}


def _pdf_content_bytes(page: pypdf.PageObject) -> int:
    """Decompressed size of a page's content streams (pypdf keeps them decoded, so a stream
    shared by many pages is unpacked once, but parsed again for every page)."""
    contents = page.get("/Contents")
    if contents is None:
        return 0
    contents = contents.get_object()
    streams = contents if isinstance(contents, pypdf.generic.ArrayObject) else [contents]
    total = 0
    for stream in streams:
        stream = stream.get_object()
        if isinstance(stream, pypdf.generic.StreamObject):
            total += len(stream.get_data())
    return total


def _decrypt_with_empty_password(reader: pypdf.PdfReader) -> bool:
    # Many PDFs are "encrypted" only to set permissions, with an empty user password.
    try:
        return reader.decrypt("") != pypdf.PasswordType.NOT_DECRYPTED
    except Exception:  # e.g. DependencyError when AES needs the missing `cryptography`
        return False


def _pdf_metadata_title(reader: pypdf.PdfReader) -> str:
    # Broken metadata must not cost the text, so any problem here means "no title".
    try:
        metadata = reader.metadata
        title = metadata.title if metadata else None
    except Exception:
        return ""
    return " ".join(str(title).split()) if title else ""


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    global _pypdf_quiet_depth, _pypdf_saved_level
    with _pypdf_quiet_lock:
        if _pypdf_quiet_depth == 0:
            _pypdf_saved_level = _PYPDF_LOGGER.level
            _PYPDF_LOGGER.setLevel(logging.ERROR)
        _pypdf_quiet_depth += 1
    try:
        yield
    finally:
        with _pypdf_quiet_lock:
            _pypdf_quiet_depth -= 1
            if _pypdf_quiet_depth == 0:
                _PYPDF_LOGGER.setLevel(_pypdf_saved_level)


def docx_document(name: str, data: bytes, *, doc_id: str) -> Document | SkippedSource:
    """A Word `.docx`: paragraphs and table rows in document order, separated by blank lines.

    The title is the document's Title property, else its first heading, else its first
    paragraph. A broken file, or one over the caps (unpacked size, paragraphs, elements,
    characters), becomes a `SkippedSource`; this never raises.
    """
    try:
        _check_docx_parts(data)
        word = docx.Document(io.BytesIO(data))
        blocks: list[str] = []
        heading = ""
        chars = 0
        for item in word.iter_inner_content():
            if isinstance(item, Table):
                rows = _docx_table_rows(item)
                chars += sum(len(row) for row in rows)
                _check_chars(chars)
                blocks.extend(rows)
                continue
            block = _normalise_newlines(item.text).strip()
            if not block:
                continue
            chars += len(block)
            _check_chars(chars)
            blocks.append(block)
            style = (item.style.name or "").lower() if item.style is not None else ""
            if not heading and style.startswith(_DOCX_TITLE_STYLES):
                heading = " ".join(block.split())
        core_title = " ".join((word.core_properties.title or "").split())
    except _OverLimit as exc:
        return SkippedSource(name, str(exc), doc_id)
    # A .docx is a zip of XML parts; damage shows up as BadZipFile, KeyError, lxml errors,
    # python-docx's own errors and more, all meaning "cannot read this file" to the user.
    except Exception as exc:
        return SkippedSource(name, f"not a readable DOCX file: {_describe(exc)}", doc_id)
    text = "\n\n".join(blocks)
    if not text.strip():
        return SkippedSource(name, "empty document (the DOCX has no text)", doc_id)
    title = core_title or heading
    if not title or len(title) > _MAX_TITLE_CHARS:
        title = _first_line_title(doc_id, text)
    return Document(id=doc_id, text=text, title=title)


def _check_docx_parts(data: bytes) -> None:
    """Refuse a .docx whose XML would unpack or parse too big, before python-docx builds it.

    The sizes are the zip's own, which `zipfile` also holds each part to when unpacking, so a
    part cannot lie its way past them. A damaged zip is left to python-docx to report.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    with archive:
        parts = [info for info in archive.infolist()
                 if info.filename.lower().endswith((".xml", ".rels"))]
        unpacked = sum(info.file_size for info in parts)
        if unpacked > MAX_DOCX_XML_BYTES:
            raise _OverLimit(f"the DOCX's XML unpacks to more than {MAX_DOCX_XML_BYTES:,} bytes "
                             "(the limit); split it into smaller files")
        for info in parts:
            if (info.file_size > _DOCX_RATIO_FROM_BYTES
                    and info.file_size > MAX_DOCX_RATIO * max(info.compress_size, 1)):
                raise _OverLimit(
                    f"the DOCX part {info.filename} unpacks more than {MAX_DOCX_RATIO} times "
                    "its packed size (the limit; it looks like a zip bomb)")
        counter = _ElementCounter("the DOCX", MAX_DOCX_ELEMENTS, MAX_DOCX_PARAGRAPHS)
        for info in parts:
            # A fresh parser per part (each is its own XML document), one counter for all.
            parser = etree.XMLParser(target=counter, resolve_entities=False, no_network=True)
            try:
                with archive.open(info) as part:
                    _count_elements(parser, iter(lambda: part.read(_CHUNK), b""))
            except _OverLimit:  # a ValueError too, but the refusal, not damage
                raise
            except (zipfile.BadZipFile, OSError, ValueError, zlib.error):
                return


def _docx_table_rows(table: Table) -> list[str]:
    """One block per table row: its cells' text joined by " | "."""
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans; keep it once.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cell_text = " ".join(cell.text.split())
            if cell_text:
                cells.append(cell_text)
        if cells:
            rows.append(" | ".join(cells))
    return rows


def _first_line_title(doc_id: str, text: str) -> str:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first_line if len(first_line) <= _MAX_TITLE_CHARS else Path(doc_id).stem


def _describe(exc: Exception) -> str:
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


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


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
