"""Chunking that keeps exact character offsets: `document.text[start:end] == chunk.text`."""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from core.documents import Chunk, Document

# Paragraphs first, then lines, then sentence ends, then words: chunks end where sentences do
# whenever a sentence fits.
_SEPARATORS = [r"\n\s*\n", r"\n", r"(?<=[.!?])\s+", r"(?<=[;:,])\s+", r"\s+", ""]


class Chunker:
    """Splits documents into overlapping, sentence-aligned chunks with exact offsets."""

    def __init__(self, *, chunk_size: int, chunk_overlap: int) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size), got {chunk_overlap} "
                f"with chunk_size {chunk_size}"
            )
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """The chunks of one document, in order, each with its exact span."""
        text = document.text
        chunks: list[Chunk] = []
        search_from = 0
        for piece in self._splitter.split_text(text):
            start = text.find(piece, search_from)
            if start < 0:
                # The splitter returns substrings of the text; if one is ever not found, the
                # offsets would lie, so fail loudly rather than cite the wrong place.
                raise AssertionError(f"chunk not found in document {document.id!r}")
            end = start + len(piece)
            chunks.append(Chunk(document.id, len(chunks), start, end, piece))
            # The next chunk starts after this one's start (overlap), never before.
            search_from = start + 1
        return chunks
