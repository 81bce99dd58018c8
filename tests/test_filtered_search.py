"""Filtered search returns the unfiltered ranking, filtered: nothing a filter keeps is lost,
whichever way each index serves the filter, and a write is seen by the next filtered search."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.documents import Document, Filters
from core.settings import Settings
from core.text import search_tokens
from index import filtering
from index.ingest import ingest_documents
from index.store import CollectionStore, Store

TOWNS = ("Marrowby", "Quillhaven", "Dunlowe", "Ashcombe", "Fenwick Cross", "Tollbridge")
TOPICS = (
    ("ferry timetable", "The winter ferry now leaves the north pier at twenty past seven, "
     "and the last crossing back is at half past nine."),
    ("library roof", "Builders replaced the slate roof of the old library after water "
     "reached the map room during the spring storms."),
    ("market hall", "Stallholders voted to keep the covered market open on Sundays through "
     "the summer, with a cheese fair on the first weekend."),
    ("tidal barrier", "Engineers tested the tidal barrier at the river mouth and found two "
     "gates that closed slower than the design allows."),
    ("school meals", "The primary school will cook its lunches on site again from September, "
     "ending six years of meals trucked in from the city."),
    ("cycle lanes", "A painted cycle lane along the seafront will become a kerbed one, after "
     "three collisions with delivery vans in a single month."),
)
SOURCES = ("Harbour Gazette", "Valley Post", "Coast Radio")
LONG_DOC = "almanac"


def _articles() -> list[Document]:
    """Thirty-six short dated articles from three sources, six undated ones and one long."""
    articles = []
    for number in range(36):
        town, (topic, detail) = TOWNS[number % 6], TOPICS[number // 6]
        articles.append(Document(
            id=f"a{number:02d}", title=f"{town}: {topic}", source=SOURCES[number % 3],
            date=f"2025-{number % 12 + 1:02d}-{number % 27 + 1:02d}",
            text=f"{town} {topic}\n\n{detail} Residents of {town} were asked for their views "
                 f"at a meeting in the parish hall. The {topic} plan for {town} goes to the "
                 f"council for a final vote next month."))
    for number in range(6):
        town, (topic, detail) = TOWNS[number], TOPICS[number]
        articles.append(Document(
            id=f"u{number}", title=f"{town} notes", source="Coast Radio",
            text=f"Notes from {town}\n\n{detail} Nobody recorded when this note was written "
                 f"about {topic} in {town}."))
    paragraphs = [f"Entry {n}. In {TOWNS[n % 6]}, the {TOPICS[n % 6][0]} came up again: "
                  f"{TOPICS[n % 6][1]} The clerk filed it under year {1990 + n}."
                  for n in range(40)]
    articles.append(Document(id=LONG_DOC, title="Almanac of the coast", source="Almanac Press",
                             date="2024-06-01", text="Almanac\n\n" + "\n\n".join(paragraphs)))
    return articles


@pytest.fixture
def collection(store: Store, embedder, settings: Settings) -> CollectionStore:
    """A collection of the articles above, in a real Chroma and catalog in a temp folder."""
    ingest_documents(_articles(), store=store, collection="towns", embedder=embedder,
                     settings=settings)
    return store.collection("towns")


FILTERS = {
    "date_to": Filters(date_to="2025-06-30"),
    "window": Filters(date_from="2025-03-01", date_to="2025-08-31"),
    "source": Filters(sources=("Valley Post",)),
    "doc_ids": Filters(doc_ids=("a03", "a17", "a29", "u2")),
    "as_of": Filters(as_of="2025-04-30"),
    "one document": Filters(doc_ids=(LONG_DOC,)),
}
QUESTION = "When does the last ferry cross back from the north pier?"


def _doc(chunk_id: str) -> str:
    return chunk_id.split("::")[0]


def _filtered(ranking: list[str], allowed: frozenset[str]) -> list[str]:
    return [chunk_id for chunk_id in ranking if _doc(chunk_id) in allowed]


def _check_all_indexes(collection: CollectionStore, embedder, filters: Filters, k: int
                       ) -> None:
    """Each index's filtered ranking is its whole unfiltered ranking with the rest dropped."""
    allowed = collection.matching_doc_ids(filters)
    everything = collection.count_chunks()
    vector = embedder.embed_query(QUESTION)
    tokens = search_tokens(QUESTION)
    searches: dict[str, Callable[..., list]] = {
        "dense": lambda f, n: collection.dense_search(vector, n, f),
        "lexical": lambda f, n: collection.lexical_search(tokens, n, f),
    }
    for name, search in searches.items():
        expected = _filtered([hit.chunk_id for hit in search(None, everything)], allowed)
        found = [hit.chunk_id for hit in search(filters, k)]
        assert found == expected[:k], name


# How each index serves a filter: its documents' vectors searched exactly (few chunks), the
# unfiltered HNSW search over-fetched and filtered (a fair share), or Chroma's `where`.
PATHS = {"exact": {}, "over-fetch": {"EXACT_LIMIT": 0},
         "where": {"EXACT_LIMIT": 0, "OVER_FETCH_LIMIT": 0}}


@pytest.mark.parametrize("kind", FILTERS)
def test_each_filter_returns_the_unfiltered_ranking_filtered(collection: CollectionStore,
                                                             embedder, kind: str) -> None:
    filters = FILTERS[kind]
    allowed = collection.matching_doc_ids(filters)
    assert 0 < len(allowed) < collection.count_documents()
    for path, limits in PATHS.items():
        with pytest.MonkeyPatch.context() as patch:
            for name, value in limits.items():
                patch.setattr(filtering, name, value)
            try:
                _check_all_indexes(collection, embedder, filters, k=8)
            except AssertionError as failure:
                raise AssertionError(f"served by {path}: {failure}") from failure


def test_a_filter_keeping_one_document_still_fills_k(collection: CollectionStore,
                                                     embedder) -> None:
    only = FILTERS["one document"]
    vector = embedder.embed_query(QUESTION)
    owned = [chunk for chunk in collection.chunk_ids() if _doc(chunk) == LONG_DOC]
    assert len(owned) > 12
    for limits in PATHS.values():
        with pytest.MonkeyPatch.context() as patch:
            for name, value in limits.items():
                patch.setattr(filtering, name, value)
            hits = collection.dense_search(vector, 12, only)
        assert len(hits) == 12
        assert {_doc(hit.chunk_id) for hit in hits} == {LONG_DOC}
    lexical = collection.lexical_search(search_tokens("ferry pier crossing"), 12, only)
    assert len(lexical) == 12 and {_doc(hit.chunk_id) for hit in lexical} == {LONG_DOC}


def test_a_filter_no_document_passes_finds_nothing(collection: CollectionStore,
                                                   embedder) -> None:
    nobody = Filters(sources=("Nobody's Newsletter",))
    vector = embedder.embed_query(QUESTION)
    assert collection.dense_search(vector, 5, nobody) == []
    assert collection.lexical_search(search_tokens(QUESTION), 5, nobody) == []


def test_filtered_results_follow_an_update_and_a_delete(collection: CollectionStore,
                                                        store: Store, embedder,
                                                        settings: Settings) -> None:
    valley = FILTERS["source"]
    vector = embedder.embed_query(QUESTION)
    tokens = search_tokens(QUESTION)

    def found_docs() -> set[str]:
        hits = (collection.dense_search(vector, 40, valley)
                + collection.lexical_search(tokens, 40, valley))
        return {_doc(hit.chunk_id) for hit in hits}

    # a01 is a Valley Post article about the ferry; a00 is the Harbour Gazette's.
    before = found_docs()
    assert "a01" in before and "a00" not in before
    assert {"a00", "a01"} & collection.matching_doc_ids(valley) == {"a01"}

    moved = next(d for d in _articles() if d.id == "a00")
    ingest_documents([Document(id=moved.id, text=moved.text, title=moved.title,
                               date=moved.date, source="Valley Post")],
                     store=store, collection="towns", embedder=embedder, settings=settings)
    collection.delete(["a01"])

    after = found_docs()
    assert "a00" in after and "a01" not in after
    assert {"a00", "a01"} & collection.matching_doc_ids(valley) == {"a00"}
    _check_all_indexes(collection, embedder, valley, k=8)
