"""Document listings come in pages of summaries, read without the documents' text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from citeqa import Citeqa
from citeqa.app import MAX_LIST_LIMIT
from core.documents import DocumentInfo
from core.errors import InvalidInput
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from server.app import create_app

COLLECTION = "notes"


def _note(number: int) -> dict[str, str]:
    """A short field note of our own, numbered so that ids sort in a known order."""
    return {"id": f"note-{number:03d}", "title": f"Field note {number}",
            "text": f"Field note {number}: the tide came in at dusk and the gulls moved "
                    f"{number} metres up the shingle beach before settling for the night.",
            "source": "Harbour log", "date": "2026-03-01"}


def _add(services: Citeqa, numbers: range | list[int]) -> None:
    services.ingest(services.read_records([_note(n) for n in numbers]), collection=COLLECTION)


def _pages(services: Citeqa, limit: int) -> Iterator[list[str]]:
    cursor = None
    while True:
        page = services.document_page(COLLECTION, limit=limit, cursor=cursor)
        yield [d.id for d in page.documents]
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def test_paging_lists_every_document_exactly_once(services: Citeqa) -> None:
    _add(services, range(23))

    pages = list(_pages(services, limit=5))

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    listed = [doc_id for page in pages for doc_id in page]
    assert listed == [f"note-{n:03d}" for n in range(23)]
    assert services.document_page(COLLECTION, limit=5).total == 23


def test_summaries_carry_no_text_but_its_size(services: Citeqa) -> None:
    _add(services, [7])

    [summary] = services.document_page(COLLECTION).documents

    assert not hasattr(summary, "text")
    assert summary.size == len(_note(7)["text"])
    assert (summary.title, summary.source, summary.date, summary.chunks) == (
        "Field note 7", "Harbour log", "2026-03-01", 1)


def test_documents_added_while_paging_appear_only_after_the_cursor(services: Citeqa) -> None:
    _add(services, range(0, 20, 2))  # note-000, note-002, ... note-018
    first = services.document_page(COLLECTION, limit=4)
    assert first.next_cursor == "note-006"

    # One id sorts before the cursor (missed by this pass), one after it (listed).
    _add(services, [3, 11])
    rest = [d.id for page in _pages_from(services, first.next_cursor) for d in page]

    listed = [d.id for d in first.documents] + rest
    assert len(listed) == len(set(listed)), "no document twice"
    assert set(f"note-{n:03d}" for n in range(0, 20, 2)) <= set(listed)
    assert "note-011" in listed and "note-003" not in listed


def _pages_from(services: Citeqa, cursor: str | None) -> Iterator[list[DocumentInfo]]:
    while cursor is not None:
        page = services.document_page(COLLECTION, limit=4, cursor=cursor)
        yield page.documents
        cursor = page.next_cursor


def test_all_summaries_follow_the_pages_to_the_end(services: Citeqa) -> None:
    _add(services, range(9))

    pages = list(services.all_document_summaries(COLLECTION, page_size=4))

    assert [[d.id for d in page.documents] for page in pages] == [
        [f"note-{n:03d}" for n in numbers] for numbers in (range(4), range(4, 8), [8])]


@pytest.mark.parametrize("limit", [0, -3, MAX_LIST_LIMIT + 1])
def test_a_limit_out_of_bounds_is_refused_naming_it(services: Citeqa, limit: int) -> None:
    _add(services, [1])
    with pytest.raises(InvalidInput, match=f"got {limit}"):
        services.document_page(COLLECTION, limit=limit)


@pytest.fixture
def notes_client(settings: Settings, services: Citeqa,
                 embedder: SentenceTransformerEmbedder) -> Iterator[TestClient]:
    """The API over a collection of 12 notes."""
    _add(services, range(12))
    with TestClient(create_app(settings, embedder=embedder, store=services.store)) as client:
        yield client


def test_api_pages_through_summaries(notes_client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"collection": COLLECTION, "limit": 5} | ({"cursor": cursor} if cursor else {})
        body = notes_client.get("/v1/documents", params=params).json()
        assert body["total"] == 12
        assert all("text" not in d for d in body["documents"])
        seen += [d["id"] for d in body["documents"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"note-{n:03d}" for n in range(12)]


def test_api_lists_a_default_page_without_parameters(notes_client: TestClient) -> None:
    body = notes_client.get("/v1/documents", params={"collection": COLLECTION}).json()

    assert len(body["documents"]) == 12 and body["next_cursor"] is None
    assert body["documents"][0]["size"] == len(_note(0)["text"])


@pytest.mark.parametrize("limit", ["0", "5000"])
def test_api_refuses_a_bad_limit_naming_it(notes_client: TestClient, limit: str) -> None:
    response = notes_client.get("/v1/documents", params={"collection": COLLECTION,
                                                         "limit": limit})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_limit"
    assert f"got {limit}" in response.json()["detail"]


def test_api_refuses_an_empty_cursor(notes_client: TestClient) -> None:
    response = notes_client.get("/v1/documents", params={"collection": COLLECTION, "cursor": ""})

    assert response.status_code == 400 and response.json()["error"] == "invalid_cursor"
