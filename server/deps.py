"""FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from citeqa import Citeqa


def get_citeqa(request: Request) -> Citeqa:
    """The application built at start-up."""
    citeqa: Citeqa = request.app.state.citeqa
    return citeqa


CiteqaDep = Annotated[Citeqa, Depends(get_citeqa)]
CollectionQuery = Annotated[
    str | None, Query(description="Collection name (default: the configured one, `articles`).")
]
