"""The errors only ingestion raises; the shared ones are in `core.errors`."""

from __future__ import annotations

from core.errors import CiteqaError


class UnreadableFile(CiteqaError):
    """A file that cannot be turned into text (binary, wrong encoding, broken markup)."""

    status = 422
    code = "unreadable_file"
