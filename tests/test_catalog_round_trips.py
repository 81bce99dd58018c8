"""A question asks the catalog as little as it can: each query is a network hop with the
PostgreSQL catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from citeqa import Citeqa
from index.catalog import Catalog

QUESTION = "Who co-leads the lab?"
COLLECTION = "staff"


class _Counting:
    """A catalog connection that records every statement sent through it."""

    def __init__(self, session: Any, log: list[str]) -> None:
        self._session = session
        self._log = log

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self._log.append(sql)
        return self._session.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


@contextmanager
def counted(catalog: Catalog) -> Iterator[list[str]]:
    """The statements the catalog runs meanwhile."""
    log: list[str] = []
    connect = catalog._connect
    catalog._connect = lambda: _Counting(connect(), log)  # type: ignore[method-assign]
    try:
        yield log
    finally:
        catalog._connect = connect  # type: ignore[method-assign]


def _question_queries(services: Citeqa, as_of: date | None) -> list[list[str]]:
    """The statements each of three runs of the same question sends to the catalog."""
    catalog = services.store._catalog
    runs = []
    for _ in range(3):
        with counted(catalog) as log:
            services.search(QUESTION, as_of=as_of)
        runs.append(log)
    return runs


def test_a_repeated_dated_question_asks_the_catalog_only_for_its_version(
        sample_services: Citeqa) -> None:
    runs = _question_queries(sample_services, date(2026, 1, 15))

    # Before the per-version answers, each repeat sent 9 statements, 3 of them listing the ids
    # of every document dated after as_of (one per retriever); now the latest date is asked
    # once per catalog version.
    for log in runs[1:]:
        assert not any("date_num" in sql for sql in log), log
        assert len(log) <= 6, log


def test_a_write_is_seen_by_the_next_dated_question(services: Citeqa) -> None:
    def add(doc_id: str, day: str) -> None:
        services.ingest(services.read_records([{
            "id": doc_id, "title": "Lab staffing",
            "text": f"On {day} the lab named its co-leads: Ines Marlow and Teo Brandt.",
            "date": day}]), collection=COLLECTION)

    add("early.txt", "2026-01-02")
    as_of = date(2026, 2, 1)
    assert [p.doc_id for p in services.search(QUESTION, collection=COLLECTION, as_of=as_of)] \
        == ["early.txt"]

    add("late.txt", "2026-03-05")

    found = {p.doc_id for p in services.search(QUESTION, collection=COLLECTION, as_of=as_of)}
    assert found == {"early.txt"}, "a document dated after as_of stays out once it exists"
    assert {p.doc_id for p in services.search(QUESTION, collection=COLLECTION)} == {
        "early.txt", "late.txt"}
