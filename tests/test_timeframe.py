"""Time-aware questions: `as_of`, relative time phrases, and what they do to retrieval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from citeqa import Citeqa
from citeqa.evaluate import run_evaluation
from core.documents import Document, Filters
from core.errors import InvalidInput
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_documents
from qa.eval_set import read_questions
from qa.timeframe import (
    TimeWindow,
    as_of_date,
    parse_day,
    time_window,
    today,
    without_phrase,
)
from server.app import create_app
from server.cli import app

# --- the phrases, read against a fixed as_of ------------------------------------------------

WED_NEW_YEAR = date(2025, 1, 1)  # a Wednesday, on a year boundary
SAT = date(2025, 3, 15)
D = date.fromisoformat


@pytest.mark.parametrize(("question", "as_of", "phrase", "start", "end"), [
    ("What opened today?", WED_NEW_YEAR, "today", "2025-01-01", "2025-01-01"),
    ("Who won yesterday?", WED_NEW_YEAR, "yesterday", "2024-12-31", "2024-12-31"),
    # The week of 1 January 2025 starts on Monday 30 December 2024.
    ("Which ship sank this week?", WED_NEW_YEAR, "this week", "2024-12-30", "2025-01-01"),
    ("Who resigned last week?", WED_NEW_YEAR, "last week", "2024-12-23", "2024-12-29"),
    ("What did it cost this month?", WED_NEW_YEAR, "this month", "2025-01-01", "2025-01-01"),
    ("What closed last month?", WED_NEW_YEAR, "last month", "2024-12-01", "2024-12-31"),
    ("Who has led this year?", WED_NEW_YEAR, "this year", "2025-01-01", "2025-01-01"),
    ("Who won last year?", WED_NEW_YEAR, "last year", "2024-01-01", "2024-12-31"),
    # Asked on a Wednesday, "on Wednesday" is that day.
    ("What fell on Wednesday?", WED_NEW_YEAR, "on Wednesday", "2025-01-01", "2025-01-01"),
    ("What fell on Monday?", WED_NEW_YEAR, "on Monday", "2024-12-30", "2024-12-30"),
    ("What fell on Thursday?", WED_NEW_YEAR, "on Thursday", "2024-12-26", "2024-12-26"),
    ("What fell last Wednesday?", WED_NEW_YEAR, "last Wednesday", "2024-12-25", "2024-12-25"),
    # Asked in January, "in March" is last year's March; "in January" this one, so far.
    ("Who married in March?", WED_NEW_YEAR, "in March", "2024-03-01", "2024-03-31"),
    ("Who married in January?", WED_NEW_YEAR, "in January", "2025-01-01", "2025-01-01"),
    ("Who married in December?", WED_NEW_YEAR, "in December", "2024-12-01", "2024-12-31"),
    ("Who married in March 2023?", WED_NEW_YEAR, "in March 2023", "2023-03-01", "2023-03-31"),
    ("Who married in May?", SAT, "in May", "2024-05-01", "2024-05-31"),
    ("Who married in March?", SAT, "in March", "2025-03-01", "2025-03-15"),
    ("Who left recently?", WED_NEW_YEAR, "recently", "2024-12-03", "2025-01-01"),
    ("Who won in the past week?", WED_NEW_YEAR, "in the past week", "2024-12-26",
     "2025-01-01"),
    ("Which fair opened this weekend?", SAT, "this weekend", "2025-03-15", "2025-03-15"),
    ("Which fair opened this weekend?", WED_NEW_YEAR, "this weekend", "2024-12-28",
     "2024-12-29"),
    ("Which fair opened last weekend?", SAT, "last weekend", "2025-03-08", "2025-03-09"),
    ("Which fair opened last weekend?", WED_NEW_YEAR, "last weekend", "2024-12-28",
     "2024-12-29"),
    # Two phrases: the narrower one is what the question is about.
    ("This year, who spoke on Monday?", SAT, "on Monday", "2025-03-10", "2025-03-10"),
])
def test_time_window_reads_each_phrase_against_as_of(question: str, as_of: date, phrase: str,
                                                      start: str, end: str) -> None:
    assert time_window(question, as_of) == TimeWindow(phrase, D(start), D(end))


@pytest.mark.parametrize("question", [
    "Who co-leads the lab?",
    "In which city may the lab open?",  # "may" the verb, not the month
    "What happened in March 2027?",  # after as_of: no window
    "Which weekly market sells honey?",
])
def test_questions_without_a_usable_time_phrase_have_no_window(question: str) -> None:
    assert time_window(question, date(2026, 1, 15)) is None


def test_a_window_never_reaches_past_as_of_and_serialises_as_iso() -> None:
    window = time_window("Which company reported this month?", date(2024, 2, 29))
    assert window is not None
    assert window.end == date(2024, 2, 29)
    assert window.to_dict() == {"phrase": "this month", "start": "2024-02-01",
                                "end": "2024-02-29"}
    assert window.holds(date(2024, 2, 10)) and not window.holds(None)
    assert not window.holds(date(2024, 3, 1))


def test_the_phrase_can_be_taken_out_of_the_searched_text() -> None:
    window = time_window("Which author died this week at 86?", date(2024, 5, 2))
    assert without_phrase("Which author died this week at 86?", window) == \
        "Which author died at 86?"
    assert without_phrase("Who won?", None) == "Who won?"


def test_as_of_dates_are_iso_days_and_bad_ones_say_what_was_wrong() -> None:
    assert parse_day("2024-05-02") == date(2024, 5, 2)
    for bad in ("2024-5-2", "02/05/2024", "2024-02-30", "yesterday", "0999-01-01", ""):
        assert parse_day(bad) is None, bad
    assert as_of_date(None) == today()
    assert as_of_date(date(2024, 5, 2)) == date(2024, 5, 2)
    with pytest.raises(InvalidInput, match="'2024-13-01'") as caught:
        as_of_date("2024-13-01")
    assert caught.value.code == "invalid_as_of"


# --- end to end, over articles of our own -----------------------------------------------------

MARKET = "The Millbrook riverside market holds its jam tasting every Wednesday."
ARTICLES = [
    Document(id="market-week-1.md", title="Apricot jam wins Millbrook market tasting",
             date="2025-03-05",
             text=f"{MARKET} This Wednesday the judges chose the apricot jam of Ada Fenwick, "
                  "a retired beekeeper from Lower Millbrook, as the best preserve of the week. "
                  "Forty-one jars were entered."),
    Document(id="market-week-2.md", title="Quince jelly wins Millbrook market tasting",
             date="2025-03-12",
             text=f"{MARKET} This Wednesday the judges chose the quince jelly of Bertram "
                  "Ogilvy, a ferry mechanic from Upper Millbrook, as the best preserve of the "
                  "week. Thirty-eight jars were entered."),
    Document(id="market-week-3.md", title="Plum chutney wins Millbrook market tasting",
             date="2025-03-19",
             text=f"{MARKET} This Wednesday the judges chose the plum chutney of Celia Marsh, "
                  "a school librarian from Millbrook Green, as the best preserve of the week. "
                  "Forty-four jars were entered."),
    Document(id="tasting-judges.md", title="Who judges the Millbrook tastings",
             text="The judges of the Millbrook riverside market tastings are volunteers from "
                  "the Millbrook Cookery Guild. The guild is chaired by Dorian Pell, who has "
                  "run its winter baking classes since 2011."),
]
WINNER_QUESTION = "Whose preserve won the Millbrook market tasting this week?"
GUILD_QUESTION = "Who chairs the Millbrook Cookery Guild?"
FUTURE = "market-week-3.md"


def _ingest(services: Citeqa) -> None:
    ingest_documents(ARTICLES, store=services.store, collection="articles",
                     embedder=services.embedder, settings=services.settings)


@pytest.fixture
def market(services: Citeqa) -> Citeqa:
    """Citeqa over the three weekly market articles and the undated judges' article."""
    _ingest(services)
    return services


@pytest.mark.parametrize(("as_of", "week"), [(date(2025, 3, 7), "market-week-1.md"),
                                             (date(2025, 3, 14), "market-week-2.md"),
                                             (date(2025, 3, 21), "market-week-3.md")])
def test_this_week_cites_the_article_of_the_asked_week(market: Citeqa, as_of: date,
                                                       week: str) -> None:
    answer = market.assistant.ask(WINNER_QUESTION, as_of=as_of)

    assert not answer.abstained
    assert answer.citations[0].doc_id == week
    assert answer.passages[0].doc_id == week
    assert answer.as_of == as_of.isoformat()
    assert answer.time_window is not None and answer.time_window.phrase == "this week"
    assert answer.time_window.end == as_of.isoformat()
    # The asked week leads, so other weeks' articles are not drawn on; undated ones may be.
    assert {p.doc_id for p in answer.passages} <= {week, "tasting-judges.md"}


def test_documents_dated_after_as_of_are_never_cited_or_listed(market: Citeqa) -> None:
    as_of = date(2025, 3, 14)
    for question in (WINNER_QUESTION, "Whose plum chutney won the Millbrook tasting?",
                     "How many jars were entered for the plum chutney's tasting?",
                     "Celia Marsh school librarian Millbrook Green"):
        answer = market.assistant.ask(question, as_of=as_of, top_k=50)
        assert FUTURE not in {p.doc_id for p in answer.passages}, question
        assert FUTURE not in {c.doc_id for c in answer.citations}, question
        found = market.assistant.search(question, as_of=as_of, top_k=50)
        assert FUTURE not in {p.doc_id for p in found}, question
    # Asked today, the same article is there to be found.
    today_answer = market.assistant.ask("Whose plum chutney won the Millbrook tasting?")
    assert today_answer.citations[0].doc_id == FUTURE
    assert today_answer.as_of == today().isoformat()


@pytest.mark.parametrize("as_of", [
    date(2025, 3, 14),  # one dated article after as_of, one undated: left out by id
    date(2025, 3, 1),  # every dated article after as_of: kept by date or as undated
])
def test_an_undated_document_is_still_found(market: Citeqa, as_of: date) -> None:
    answer = market.assistant.ask(GUILD_QUESTION, as_of=as_of, top_k=50)

    assert answer.citations and answer.citations[0].doc_id == "tasting-judges.md"
    listed = {p.doc_id for p in answer.passages}
    assert "tasting-judges.md" in listed
    assert all(d.date is None or d.date <= as_of.isoformat()
               for d in (a for a in ARTICLES if a.id in listed))
    # With a time window, it is neither dropped nor favoured.
    windowed = market.assistant.ask(WINNER_QUESTION, as_of=as_of, top_k=50)
    assert "tasting-judges.md" in {p.doc_id for p in windowed.passages}


REGATTA = [
    Document(id="regatta-early.md", title="Otter Lane crew takes the Millbrook regatta",
             date="2025-03-01",
             text="The Otter Lane rowing crew won the Millbrook river regatta on Saturday, "
                  "beating six boats over the two-kilometre course."),
    Document(id="regatta-report.md", title="Millbrook regatta goes to the Weir Street crew",
             date="2025-03-10",
             text="The Weir Street rowing crew won the Millbrook river regatta on Saturday, "
                  "beating five boats over the two-kilometre course, the club said on Monday."),
]


def test_a_report_dated_after_the_span_it_is_about_is_favoured(services: Citeqa) -> None:
    ingest_documents(REGATTA, store=services.store, collection="regatta",
                     embedder=services.embedder, settings=services.settings)
    # Last weekend was 8-9 March; the report came out on Monday the 10th.
    answer = services.assistant.ask("Which crew won the Millbrook regatta last weekend?",
                                    collection="regatta", as_of=date(2025, 3, 14))

    assert answer.time_window is not None
    assert (answer.time_window.start, answer.time_window.end) == ("2025-03-08", "2025-03-14")
    assert answer.citations[0].doc_id == "regatta-report.md"
    assert [p.doc_id for p in answer.passages] == ["regatta-report.md"]


def test_as_of_combines_with_the_other_filters(market: Citeqa) -> None:
    filters = Filters(doc_ids=("market-week-1.md", FUTURE, "tasting-judges.md"))
    for question in (WINNER_QUESTION, GUILD_QUESTION):
        answer = market.assistant.ask(question, as_of=date(2025, 3, 14), filters=filters,
                                      top_k=50)
        assert {p.doc_id for p in answer.passages} <= {"market-week-1.md",
                                                       "tasting-judges.md"}
        assert answer.passages


def test_a_window_that_holds_nothing_relevant_does_not_empty_the_answer(
        market: Citeqa) -> None:
    answer = market.assistant.ask("Whose quince jelly won the Millbrook tasting yesterday?",
                                  as_of=date(2025, 3, 18))
    assert answer.time_window is not None and answer.time_window.start == "2025-03-17"
    assert not answer.abstained
    assert answer.citations[0].doc_id == "market-week-2.md"


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def market_client(settings: Settings, embedder: SentenceTransformerEmbedder
                  ) -> Iterator[TestClient]:
    """The API over a data folder holding the market articles (sent over the API)."""
    with TestClient(create_app(settings, embedder=embedder)) as client:
        response = client.post("/v1/documents", json={"documents": [
            {"id": d.id, "title": d.title, "text": d.text,
             **({"date": d.date} if d.date else {})} for d in ARTICLES]})
        assert response.status_code in (200, 201), response.text
        yield client


def _post(client: TestClient, route: str, body: dict[str, Any], status: int = 200
          ) -> dict[str, Any]:
    response = client.post(route, json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def test_api_routes_take_as_of(market_client: TestClient) -> None:
    answer = _post(market_client, "/v1/ask", {"question": WINNER_QUESTION,
                                              "as_of": "2025-03-07"})
    assert answer["as_of"] == "2025-03-07"
    assert answer["time_window"] == {"phrase": "this week", "start": "2025-03-03",
                                     "end": "2025-03-07"}
    assert answer["citations"][0]["doc_id"] == "market-week-1.md"

    found = _post(market_client, "/v1/search", {"query": WINNER_QUESTION, "top_k": 50,
                                                "as_of": "2025-03-07"})
    assert {p["doc_id"] for p in found["passages"]} == {"market-week-1.md",
                                                        "tasting-judges.md"}

    stream = market_client.post("/v1/ask/stream", json={"question": WINNER_QUESTION,
                                                        "as_of": "2025-03-14"})
    assert stream.status_code == 200
    last = [line for line in stream.text.splitlines() if line.startswith("data: ")][-1]
    streamed = json.loads(last.removeprefix("data: "))
    assert streamed["as_of"] == "2025-03-14"
    assert streamed["citations"][0]["doc_id"] == "market-week-2.md"

    chat = _post(market_client, "/v1/chat/completions", {
        "model": "citeqa", "messages": [{"role": "user", "content": WINNER_QUESTION}],
        "as_of": "2025-03-14"})
    assert chat["citeqa"]["as_of"] == "2025-03-14"
    assert chat["citeqa"]["time_window"]["phrase"] == "this week"
    assert chat["citations"][0]["doc_id"] == "market-week-2.md"

    default = _post(market_client, "/v1/ask", {"question": GUILD_QUESTION})
    assert default["as_of"] == today().isoformat()
    assert default["time_window"] is None


@pytest.mark.parametrize(("route", "body"), [
    ("/v1/ask", {"question": WINNER_QUESTION}),
    ("/v1/ask/stream", {"question": WINNER_QUESTION}),
    ("/v1/search", {"query": WINNER_QUESTION}),
])
@pytest.mark.parametrize("bad", ["last Tuesday", "2025-02-30", "14/03/2025"])
def test_api_refuses_a_malformed_as_of_naming_it(client: TestClient, route: str,
                                                 body: dict[str, Any], bad: str) -> None:
    error = _post(client, route, {**body, "as_of": bad}, status=422)
    assert error["error"] == "invalid_request"
    assert "as_of" in error["detail"] and repr(bad) in error["detail"]
    assert "YYYY-MM-DD" in error["detail"]


def test_chat_refuses_a_malformed_as_of_in_openai_shape(client: TestClient) -> None:
    error = _post(client, "/v1/chat/completions", {
        "model": "citeqa", "messages": [{"role": "user", "content": "Who won?"}],
        "as_of": "2025-3-14"}, status=422)
    assert "'2025-3-14'" in error["error"]["message"]


def test_openapi_documents_as_of(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("AskRequest", "SearchRequest", "ChatRequest"):
        assert "as_of" in schemas[name]["properties"], name
    assert {"as_of", "time_window"} <= set(schemas["Answer"]["properties"])


# --- CLI ------------------------------------------------------------------------------------


def _cli(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args],
                              env={"COLUMNS": "200"}, catch_exceptions=False)


def test_cli_ask_takes_as_of_for_a_batch_and_per_line(market: Citeqa,
                                                      tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join(json.dumps(line) for line in [
        {"id": "default", "question": WINNER_QUESTION},
        {"id": "own", "question": WINNER_QUESTION, "as_of": "2025-03-07"},
        {"id": "bad", "question": WINNER_QUESTION, "as_of": "7 March 2025"},
    ]) + "\n")

    result = _cli(market.settings.data_dir, "ask", "--batch", str(batch),
                  "--as-of", "2025-03-14")

    assert result.exit_code == 0, result.output
    lines = {line["id"]: line for line in map(json.loads, result.stdout.splitlines())}
    assert lines["default"]["as_of"] == "2025-03-14"
    assert lines["default"]["citations"][0]["doc_id"] == "market-week-2.md"
    assert lines["own"]["as_of"] == "2025-03-07"
    assert lines["own"]["citations"][0]["doc_id"] == "market-week-1.md"
    assert lines["bad"]["error"] == "invalid_as_of"
    assert "'7 March 2025'" in lines["bad"]["detail"]


def test_cli_ask_refuses_a_malformed_as_of(tmp_path: Path) -> None:
    result = _cli(tmp_path / "data", "ask", WINNER_QUESTION, "--as-of", "next Friday")

    assert result.exit_code == 1
    assert "--as-of must be a date like 2024-05-02" in " ".join(result.output.split())
    assert "'next Friday'" in result.output
    assert "Traceback" not in result.output


def test_cli_help_explains_as_of() -> None:
    ask_help = " ".join(CliRunner().invoke(app, ["ask", "--help"], env={"COLUMNS": "200"})
                        .output.split())
    assert "--as-of" in ask_help and "YYYY-MM-DD" in ask_help and "undated" in ask_help
    eval_help = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).output
    assert "--as-of-question-date" in eval_help


# --- evaluation -----------------------------------------------------------------------------


def test_eval_questions_carry_their_date(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Q?", "gold_doc_ids": ["x"],
                                "date": "2023/01/05"}) + "\n"
                    + json.dumps({"id": "b", "question": "Q?", "gold_doc_ids": ["x"]}) + "\n")
    assert [q.date for q in read_questions(path)] == ["2023-01-05", None]
    path.write_text(json.dumps({"id": "a", "question": "Q?", "gold_doc_ids": ["x"],
                                "date": "last week"}) + "\n")
    with pytest.raises(InvalidInput, match="'last week'"):
        read_questions(path)


def test_evaluation_asks_as_of_each_questions_date_only_when_told(market: Citeqa,
                                                                  tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "title": d.title, "text": d.text,
                                          **({"date": d.date} if d.date else {})}) + "\n"
                              for d in ARTICLES))
    questions = tmp_path / "questions.jsonl"
    weeks = [("2025-03-07", "market-week-1.md"), ("2025-03-14", "market-week-2.md"),
             ("2025-03-21", "market-week-3.md")]
    questions.write_text("".join(
        json.dumps({"id": f"w{n}", "question": WINNER_QUESTION, "gold_doc_ids": [gold],
                    "date": day}) + "\n" for n, (day, gold) in enumerate(weeks)))

    dated = run_evaluation(market, corpus=corpus, questions=questions, collection="articles",
                           as_of_question_date=True)
    plain = run_evaluation(market, corpus=corpus, questions=questions, collection="articles")

    assert dated.setup["as_of_question_date"] is True
    assert dated.summary["citation_accuracy"] == 1.0
    assert plain.setup["as_of_question_date"] is False
    # The same question three times, with no date to tell the weeks apart: one answer.
    assert len({tuple(r.retrieved) for r in plain.results}) == 1
    assert plain.summary["citation_accuracy"] is not None
    assert plain.summary["citation_accuracy"] < 1.0
