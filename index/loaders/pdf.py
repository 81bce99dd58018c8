"""PDF files, read with `pypdf`: text page by page, title from the metadata (else the first
line). Within caps on pages and on decompressed stream bytes (pypdf's own limits lowered to
them), and with pypdf's repair warnings silenced while a PDF is read; broken, protected and
image-only PDFs become a `SkippedSource`. Run in the parsing worker (`index.parsing`).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pypdf

from core.documents import Document, SkippedSource
from index.loaders.common import (
    _check_chars,
    _describe,
    _first_line_title,
    _normalise_newlines,
    _OverLimit,
)

# Caps on what one PDF file may cost to parse (the others are in `index.loaders.common`).
MAX_PDF_PAGES = 2_000
# Decompressed bytes of any one PDF stream, and of all pages' content streams together (a
# stream drawn on many pages counts once per page: pypdf parses it once per page). pypdf
# parses content at about 1 MB a second, so the total keeps within the worker's time limit.
MAX_PDF_STREAM_BYTES = 10_000_000
MAX_PDF_CONTENT_BYTES = 25_000_000

# pypdf logs a warning for every quirk it repairs; they are noise for ingestion, so its loggers
# are raised to ERROR while any thread is reading a PDF, and restored when the last one is done.
_PYPDF_LOGGER = logging.getLogger("pypdf")
_pypdf_quiet_lock = threading.Lock()
_pypdf_quiet_depth = 0
_pypdf_saved_level = logging.NOTSET


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
