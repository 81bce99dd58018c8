"""Answer selection on texts of our own: the failure patterns of issue 12, one test each.

1. plain answers are not abstained on because a recogniser missed them;
2. the sentence that holds the asked fact beats the one that only shares the topic;
3. the question's names and numbers are honoured: another quake's magnitude, another lab's
   money and another lab's city do not answer;
4. a heading is never an answer, and a sentence opening with a reference brings its
   antecedent;
5. a question whose asked detail the articles never state is abstained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from citeqa import Citeqa
from core.documents import Document
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from index.ingest import ingest_documents
from qa.answer import Answer
from qa.extract import is_heading

COLLECTION = "quality"

ARTICLES = [
    Document(
        id="harbour-foundation.md", title="Harbour Foundation widens its grants",
        date="2026-02-02",
        text=(
            "The Harbour Foundation works with coastal schools to teach marine science.\n\n"
            "In fact, it has set up the Tidewater Fellowship, which pays for teachers to spend "
            "a summer on a research ship.\n\n"
            "Its director, Mara Elwyn, explains:\n\n"
            "“We want every child in the county to see a research ship at least once.”"
        ),
    ),
    Document(
        id="vane-caldwell.md", title="A life in crime fiction", date="2026-03-03",
        text=(
            "Harriet Vane-Caldwell, the British author of the best-selling Marsh Lane "
            "mysteries, died at her home in Norwich on Tuesday at the age of 86.\n\n"
            "Her publisher said she had finished a last novel in the spring and had asked for "
            "it to appear without a launch party.\n\n"
            "She wrote thirty-one books, which have been translated into 40 languages."
        ),
    ),
    Document(
        id="ostend-awards.md", title="Harbour drama sweeps the Ostend Film Awards",
        date="2026-03-08",
        text=(
            "“Salt Harbour” took home five trophies at the Ostend Film Awards on Saturday, "
            "including best picture and best director for Ilse Marchetti.\n\n"
            "The ceremony was held in the city's restored Kursaal for the first time since "
            "2019, and the jury was chaired by the actor Benoît Lacasse."
        ),
    ),
    Document(
        id="storm-idris.md", title="Coastal towns evacuated", date="2026-02-16",
        text=(
            "Storm Idris brought gusts of 140 km/h to the Cardigan coast on Monday, forcing "
            "the evacuation of 2,000 residents from low-lying streets.\n\n"
            "Ferries to the islands were cancelled, and the coastguard rescued two walkers "
            "cut off by the tide near Aberporth."
        ),
    ),
    Document(
        id="kirthos-quake.md", title="Earthquake shakes Kirthos", date="2026-04-01",
        text=(
            "A magnitude 5.2 earthquake struck the island of Kirthos early on Wednesday, the "
            "national geological institute said.\n\n"
            "The epicentre lay 14 kilometres off the island's southern coast, at a depth of "
            "8 kilometres. Seismologist Petra Lindahl said aftershocks were likely to "
            "continue for several days.\n\n"
            "Three people were treated for minor injuries, and the harbour wall at Palaiokastro "
            "was cracked."
        ),
    ),
    Document(
        id="vanuatu-quake.md", title="Strong quake hits Vanuatu", date="2026-03-24",
        text=(
            "A magnitude 7.3 earthquake struck off the coast of Vanuatu on Tuesday, killing 14 "
            "people and damaging the capital's main hospital.\n\n"
            "Rescue teams from Australia and New Zealand arrived on Wednesday to help search "
            "collapsed buildings."
        ),
    ),
    Document(
        id="halvern-lab.md", title="Halvern Telecom and Lisbrook Polytechnic open security lab",
        date="2026-01-20",
        text=(
            "The Halvern-Lisbrook Security Lab\n\n"
            "Halvern Telecom and the Polytechnic of Lisbrook have opened a joint laboratory for "
            "network security on the polytechnic's campus in Lisbrook.\n\n"
            "Halvern Telecom has run a graduate programme with the polytechnic since 2018. It "
            "has also set up a scholarship fund for twelve students a year.\n\n"
            "The lab will be led by Professor Anneke Strand, who heads the polytechnic's "
            "department of computing."
        ),
    ),
    Document(
        id="northgate-lab.md", title="Northgate opens an AI lab in Rotterdam",
        date="2026-02-12",
        text=(
            "Northgate University and the software company Corvalis Systems will open a joint "
            "artificial-intelligence lab in Rotterdam in September.\n\n"
            "The two partners have committed €48 million to the lab over its first five "
            "years, two thirds of it from Corvalis.\n\n"
            "About 60 researchers will work at the lab once it is fully staffed."
        ),
    ),
]


@pytest.fixture(scope="module")
def quality(tmp_path_factory: pytest.TempPathFactory,
            embedder: SentenceTransformerEmbedder) -> Iterator[Citeqa]:
    """Citeqa over our own articles, ingested once for the module."""
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("quality")) / "data")
    services = Citeqa.build(settings, embedder=embedder)
    ingest_documents(ARTICLES, store=services.store, collection=COLLECTION,
                     embedder=embedder, settings=settings)
    yield services


def ask(services: Citeqa, question: str) -> Answer:
    return services.assistant.ask(question, collection=COLLECTION)


@pytest.mark.parametrize(
    ("question", "doc_id", "expected"),
    [
        ("Which best-selling author died this week?", "vane-caldwell.md",
         "Harriet Vane-Caldwell"),
        ("Which film took home five trophies?", "ostend-awards.md", "“Salt Harbour”"),
        ("Which storm forced the evacuation of residents on the Cardigan coast?",
         "storm-idris.md", "Storm Idris"),
    ],
)
def test_plain_answers_are_given_not_abstained_on(quality: Citeqa, question: str,
                                                  doc_id: str, expected: str) -> None:
    answer = ask(quality, question)
    assert not answer.abstained, answer.support
    assert answer.citations[0].doc_id == doc_id
    assert expected in answer.answer


@pytest.mark.parametrize(
    ("question", "expected", "not_expected"),
    [
        ("How deep was the Kirthos earthquake?", "depth of 8 kilometres", "magnitude 5.2"),
        ("Which seismologist commented on the Kirthos quake?", "Petra Lindahl",
         "magnitude 5.2"),
    ],
)
def test_the_sentence_holding_the_asked_fact_is_quoted_not_the_one_sharing_the_topic(
        quality: Citeqa, question: str, expected: str, not_expected: str) -> None:
    answer = ask(quality, question)
    assert not answer.abstained
    assert answer.citations[0].doc_id == "kirthos-quake.md"
    assert expected in answer.citations[0].quote
    assert not_expected not in answer.citations[0].quote


def test_a_magnitude_in_the_question_picks_the_quake_it_names(quality: Citeqa) -> None:
    answer = ask(quality, "A 5.2-magnitude quake struck an island this week. "
                          "How many people were hurt?")
    assert not answer.abstained
    assert answer.citations[0].doc_id == "kirthos-quake.md"
    assert "7.3" not in answer.answer


def test_another_labs_money_does_not_answer_for_this_lab(quality: Citeqa) -> None:
    answer = ask(quality, "How much money did Halvern Telecom invest in the joint lab?")
    assert "€48 million" not in answer.answer
    assert all(c.doc_id != "northgate-lab.md" for c in answer.citations)


def test_a_labs_location_is_answered_from_its_own_article_only(quality: Citeqa) -> None:
    answer = ask(quality, "Where is the Halvern joint lab located?")
    assert not answer.abstained
    assert "Lisbrook" in answer.answer
    assert "Rotterdam" not in answer.answer
    assert {c.doc_id for c in answer.citations} == {"halvern-lab.md"}


def test_a_sentence_opening_with_it_brings_the_sentence_it_refers_to(
        quality: Citeqa) -> None:
    answer = ask(quality, "What has Halvern Telecom set up for students?")
    assert not answer.abstained
    quote = answer.citations[0].quote
    assert "scholarship fund" in quote
    # "It has also set up..." alone would leave the reader asking who "it" is.
    assert quote.startswith("Halvern Telecom has run")
    document = quality.store.collection(COLLECTION).document("halvern-lab.md").document
    assert document.text[answer.citations[0].start:answer.citations[0].end] == quote


def test_a_sentence_opening_in_fact_it_brings_what_it_refers_to(quality: Citeqa) -> None:
    answer = ask(quality, "Which fellowship did the Harbour Foundation set up?")
    assert answer.citations[0].doc_id == "harbour-foundation.md"
    quote = answer.citations[0].quote
    assert "Tidewater Fellowship" in quote
    assert quote.startswith("The Harbour Foundation works with coastal schools")


def test_a_lead_in_ending_with_a_colon_is_not_a_heading_or_a_sentence() -> None:
    assert is_heading("Its director, Mara Elwyn, explains:")
    assert not is_heading("Its director, Mara Elwyn, explained the plan to the council.")


def test_a_heading_is_never_the_answer(quality: Citeqa) -> None:
    answer = ask(quality, "What is the security lab in Lisbrook called?")
    assert all(c.quote.strip() != "The Halvern-Lisbrook Security Lab"
               for c in answer.citations)


def test_a_comparison_quotes_both_articles_and_names_each(quality: Citeqa) -> None:
    answer = ask(quality, "Compare the magnitude of the Kirthos and Vanuatu earthquakes.")
    assert {c.doc_id for c in answer.citations} == {"kirthos-quake.md", "vanuatu-quake.md"}
    assert "According to Earthquake shakes Kirthos:" in answer.answer
    assert "According to Strong quake hits Vanuatu:" in answer.answer
    assert "5.2" in answer.answer and "7.3" in answer.answer


def test_a_question_about_one_quake_quotes_one_article_unlabelled(quality: Citeqa) -> None:
    answer = ask(quality, "How strong was the earthquake on Kirthos?")
    assert {c.doc_id for c in answer.citations} == {"kirthos-quake.md"}
    assert "According to" not in answer.answer


@pytest.mark.parametrize(
    "question",
    [
        "Who designed the building of the Halvern-Lisbrook Security Lab?",
        "How many aftershocks followed the Kirthos earthquake?",
    ],
)
@pytest.mark.xfail(
    strict=True,
    reason="issue 12 is blocked here: support cannot yet tell a passage on the asked topic "
    "that never states the asked detail from one that does (near-miss 'missing_detail' is "
    "abstained on 7.5% of the time at the fitted threshold, see make train)")
def test_a_detail_the_articles_never_state_is_abstained_on(quality: Citeqa,
                                                           question: str) -> None:
    answer = ask(quality, question)
    assert answer.abstained, (answer.support, answer.answer)
    assert answer.citations == []
