"""Request and event bodies of `POST /v1/verify` and `POST /v1/verify/stream` (the
`Verification` and `CheckedStatement` objects live in `qa.verify`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.schemas import AsOf, FiltersIn


class VerifyRequest(BaseModel):
    """Any text to check, sentence by sentence, against a collection's articles."""

    text: str = Field(
        description="The text to check: a chatbot's reply, a draft, a summary... Each sentence "
        "gets a verdict; `start`/`end` in the result are offsets into this text. At most "
        "CITEQA_MAX_VERIFY_CHARS characters and CITEQA_MAX_VERIFY_SENTENCES sentences "
        "(see `GET /v1/limits`).",
        examples=["The Northgate-Corvalis AI Lab will open in September 2026 in Rotterdam. "
                  "About 60 researchers will work at the lab."])
    collection: str | None = Field(default=None,
                                   description="Collection to check against (default: articles).")
    filters: FiltersIn | None = Field(
        default=None, description="Take evidence only from these documents.")
    as_of: AsOf = None


class VerifyDone(BaseModel):
    """The last event of `POST /v1/verify/stream`: how many sentences got each verdict."""

    counts: dict[str, int] = Field(
        description="Sentences per verdict: supported, contradicted, unsupported, not_checkable.")
    collection: str = Field(description="The collection checked against.")
    as_of: str = Field(description="The date checked as of (YYYY-MM-DD).")
