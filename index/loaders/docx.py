"""Word `.docx` files, read with `python-docx`: paragraphs and table rows in document order,
title from the Title property, else the first heading, else the first paragraph. The zip's parts
are checked first (unpacked size, packing ratio, elements and paragraphs), so a zip bomb is
refused before python-docx builds anything. Run in the parsing worker (`index.parsing`).
"""

from __future__ import annotations

import io
import zipfile
import zlib

import docx
from docx.table import Table
from lxml import etree

from core.documents import Document, SkippedSource
from index.loaders.common import (
    _CHUNK,
    _MAX_TITLE_CHARS,
    _check_chars,
    _count_elements,
    _describe,
    _ElementCounter,
    _first_line_title,
    _normalise_newlines,
    _OverLimit,
)

# Caps on what one DOCX file may cost to parse (the others are in `index.loaders.common`).
# The XML parts of a .docx, unpacked; and how many times smaller than that a large part may be
# packed (ordinary XML packs 5-20 times; a zip bomb thousands).
MAX_DOCX_XML_BYTES = 50_000_000
MAX_DOCX_RATIO = 200
_DOCX_RATIO_FROM_BYTES = 5_000_000
MAX_DOCX_PARAGRAPHS = 200_000
MAX_DOCX_ELEMENTS = 2_000_000

_DOCX_TITLE_STYLES = ("title", "heading")


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
