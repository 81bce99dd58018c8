"""Follow-up questions: "the other lab", "the latter", "the second one", resolved against the
previous answer's article and names; an "And ..." question of its own is not an ellipsis; a
rewrite that does not read as a question is never used or shown.

The articles are our own: one describes two research labs, the second introduced by a sentence
whose next sentence says "The latter will specialize in ..."; one describes two companies.
"""

from __future__ import annotations

import pytest

import qa.followup
from citeqa import Citeqa
from core.documents import Document
from index.ingest import ingest_documents
from qa.followup import Rewrite, Turn, garbled, standalone_question
from qa.mentions import things_of_kind
from tests.conftest import SAMPLES

LABS_DOC = "harbourline-labs.txt"
LABS = """Harbourline Energy Opens Two Research Labs

Harbourline Energy, a utility based in Kestrel Bay, announced on Monday that it will open a \
research lab with Marren Technical University on the university's harbour campus.

The Harbourline-Marren Grid Laboratory will study how to store wind power in salt caverns and \
how to forecast demand on the regional electricity grid.

The grid lab will be co-led by Professor Ilse Dunmore, head of the university's energy \
department, and Rafael Ostrow, chief engineer of Harbourline Energy.

Harbourline will spend 21 million euros on the grid lab over four years, and the university \
will provide the building.

Two weeks later, Harbourline and the Selby Institute of Marine Science announced the Coastal \
Hydrogen Lab in Port Alder. The latter will specialize in making hydrogen from seawater with \
electrolysers powered by offshore turbines.

About 30 researchers will work in Port Alder once the building, a former ferry terminal, has \
been refitted next spring.
"""

MERGER_DOC = "vantor-ellesmere-merger.txt"
MERGER = """Vantor Foods and Ellesmere Dairy Agree to Merge

Vantor Foods, a company based in Leeds that makes frozen meals, agreed on Tuesday to merge \
with Ellesmere Dairy, a company owned by 300 farmers in north Wales.

Vantor Foods employs 2,400 people at four factories in northern England.

Ellesmere Dairy makes cheese and butter at a creamery near Wrexham and sells most of it to \
supermarkets.

The merged business will be run from Leeds by Vantor's chief executive, Anouk Selmer.
"""

# Answers as the assistant gives them: quoted sentences with [n] markers.
GRID_ANSWER = ("The Harbourline-Marren Grid Laboratory will study how to store wind power in "
               "salt caverns and how to forecast demand on the regional electricity grid. [1]")
CO_LEADS = ("The grid lab will be co-led by Professor Ilse Dunmore, head of the university's "
            "energy department, and Rafael Ostrow, chief engineer of Harbourline Energy. [1]")
MERGER_ANSWER = ("Vantor Foods, a company based in Leeds that makes frozen meals, agreed on "
                 "Tuesday to merge with Ellesmere Dairy, a company owned by 300 farmers in "
                 "north Wales. [1]")


def _after(first: str, answer: str, follow_up: str, *, article: str | None = None) -> Rewrite:
    return standalone_question(follow_up, [Turn("user", first), Turn("assistant", answer)],
                               article=article)


# The other one, the latter, the former -----------------------------------------------------

def test_the_other_lab_is_the_lab_of_the_article_the_previous_turn_was_not_about() -> None:
    rewrite = _after("What will the grid lab study?", GRID_ANSWER,
                     "And what does the other lab focus on?", article=LABS)
    assert rewrite == Rewrite("What does the Coastal Hydrogen Lab focus on?", True)


def test_the_other_lab_is_told_apart_by_the_names_in_the_previous_question() -> None:
    # The question names the hydrogen lab, so the other one is the grid lab.
    rewrite = _after("Where is the hydrogen lab?", "Harbourline and the Selby Institute of "
                     "Marine Science announced the Coastal Hydrogen Lab in Port Alder. [1]",
                     "Who leads the other lab?", article=LABS)
    assert rewrite.text == "Who leads the Harbourline-Marren Grid Laboratory?"


def test_without_a_name_the_other_lab_is_the_one_not_named_before_the_quoted_sentence() -> None:
    # "co-led ..." names no lab: the lab named last before that sentence is the one asked about.
    rewrite = _after("Who co-leads the lab?", CO_LEADS, "When will the other lab open?",
                     article=LABS)
    assert rewrite.text == "When will the Coastal Hydrogen Lab open?"


def test_the_article_can_be_looked_up_lazily_and_only_when_needed() -> None:
    calls: list[int] = []

    def lookup() -> str:
        calls.append(1)
        return LABS

    history = [Turn("user", "What will the grid lab study?"), Turn("assistant", GRID_ANSWER)]
    assert standalone_question("How much did it cost?", history, article=lookup).text == (
        "How much did the grid lab cost?")
    assert calls == []
    assert standalone_question("What does the other lab do?", history, article=lookup).text == (
        "What does the Coastal Hydrogen Lab do?")
    assert calls == [1]


def test_what_about_the_other_lab_asks_the_previous_question_about_it() -> None:
    rewrite = _after("What will the grid lab study?", GRID_ANSWER, "What about the other lab?",
                     article=LABS)
    assert rewrite.text == "What will the Coastal Hydrogen Lab study?"


def test_the_other_one_is_the_other_thing_of_the_kind_asked_about() -> None:
    rewrite = _after("Where will the grid lab be?", GRID_ANSWER, "And when will the other one "
                     "open?", article=LABS)
    assert rewrite.text == "When will the Coastal Hydrogen Lab open?"


def test_the_second_lab_is_the_second_lab_of_the_article() -> None:
    rewrite = _after("Who co-leads the lab?", CO_LEADS, "Where is the second lab?", article=LABS)
    assert rewrite.text == "Where is the Coastal Hydrogen Lab?"


def test_the_other_company_is_named_from_how_the_article_describes_it() -> None:
    # Neither name ends in "Company": "Ellesmere Dairy, a company owned by ..." says it is one.
    assert things_of_kind(MERGER, "company") == ["Vantor Foods", "Ellesmere Dairy"]
    rewrite = _after("Where is Vantor Foods based?", MERGER_ANSWER,
                     "What does the other company make?", article=MERGER)
    assert rewrite.text == "What does Ellesmere Dairy make?"


def test_the_latter_and_the_former_pick_the_things_the_previous_answer_named() -> None:
    question = "Which companies are merging?"
    assert _after(question, MERGER_ANSWER, "What does the latter make?").text == (
        "What does Ellesmere Dairy make?")
    assert _after(question, MERGER_ANSWER, "How many people does the former employ?").text == (
        "How many people does Vantor Foods employ?")


def test_ordinals_over_people_keep_working() -> None:
    question = "Who co-leads the grid lab?"
    assert _after(question, CO_LEADS, "What else does the second one do?", article=LABS).text == (
        "What else does Rafael Ostrow do?")
    assert _after(question, CO_LEADS, "What does the latter do?", article=LABS).text == (
        "What does Rafael Ostrow do?")
    assert _after(question, CO_LEADS, "What is the first one's job?").text == (
        "What is Ilse Dunmore's job?")


def test_the_latter_is_the_second_of_the_pair_not_the_last_name_of_the_answer() -> None:
    answer = CO_LEADS + (" About 30 researchers will work in Port Alder. [2] Marta Quell, a "
                         "spokeswoman, said so. [3]")
    assert _after("Who co-leads the grid lab?", answer, "What does the latter do?").text == (
        "What does Rafael Ostrow do?")
    assert _after("Who co-leads the grid lab?", answer, "What does the third one do?").text == (
        "What does Marta Quell do?")


def test_the_other_one_over_people_is_the_one_not_asked_about() -> None:
    assert _after("Who co-leads the grid lab?", CO_LEADS, "What does the other one do?").text == (
        "What does Rafael Ostrow do?")
    assert _after("What does Ilse Dunmore head?", CO_LEADS,
                  "And the other co-leader, what does he do?").text == (
        "And Rafael Ostrow, what does he do?")


def test_ordinal_words_that_are_not_references_are_left_alone() -> None:
    assert _after("Who co-leads the grid lab?", CO_LEADS,
                  "What happened in the first year?") == Rewrite(
        "What happened in the first year?", False)


# "And ..." questions of their own, ellipsis ----------------------------------------------------

def test_and_before_a_question_of_its_own_is_not_an_ellipsis() -> None:
    rewrite = _after("Where is the grid lab located?", GRID_ANSWER,
                     "And what does the other lab focus on?", article=LABS)
    assert rewrite.text == "What does the Coastal Hydrogen Lab focus on?"
    assert "Where is what" not in rewrite.text
    rewrite = _after("When will the lab open?", "x [1]", "And who pays for it?")
    assert rewrite.text == "Who pays for the lab?"


def test_an_ellipsis_of_a_noun_phrase_still_swaps_the_topic() -> None:
    assert _after("When did the tram line open?", "x [1]", "And the museum?").text == (
        "When did the museum open?")
    assert _after("When did the tram line open?", "x [1]", "And what about the museum?").text == (
        "When did the museum open?")
    assert _after("What does Miriam Okafor do?", "She is dean. [1]",
                  "What about Verhoeven?").text == "What does Verhoeven do?"


def test_a_bare_question_word_asks_the_previous_question_again() -> None:
    assert _after("When will the lab open?", "x [1]", "And where?").text == (
        "Where will the lab open?")
    # "Where co-leads the lab?" or "How much will the lab open?" would not be questions: the
    # topic is added instead.
    rewrite = _after("Who co-leads the lab?", CO_LEADS, "And when?")
    assert rewrite == Rewrite("When? (the lab)", True, fallback=True)
    assert _after("When will the lab open?", "x [1]", "How much?") == Rewrite(
        "How much? (the lab)", True, fallback=True)


# Pronouns keep working -------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "answer", "follow_up", "expected"), [
    ("When will the lab open?", "x [1]", "Where will it be?", "Where will the lab be?"),
    ("Who co-leads the grid lab?", CO_LEADS, "What does she do?", "What does Ilse Dunmore do?"),
    ("Who co-leads the grid lab?", CO_LEADS, "What is her department?",
     "What is Ilse Dunmore's department?"),
    ("When will the lab open?", "x [1]", "Who works there?", "Who works at the lab?"),
    ("When will the lab open?", "x [1]", "Who lives near there?", "Who lives near the lab?"),
    ("When will the lab open?", "x [1]", "Is there a cafe?", "Is there a cafe?"),
    ("What will the grid lab study?", GRID_ANSWER, "How much does it cost?",
     "How much does the grid lab cost?"),
])
def test_pronouns_stand_for_the_previous_person_or_topic(
        first: str, answer: str, follow_up: str, expected: str) -> None:
    assert _after(first, answer, follow_up).text == expected


# Never a garbled rewrite ---------------------------------------------------------------------

def test_garbled_questions_are_recognised() -> None:
    assert "two question words" in garbled("Where is what does the other lab focus on?")
    assert "doubled auxiliary" in garbled("When does will the lab open?")
    assert "dangling word" in garbled("Who leads the?")
    assert "no question word" in garbled("the lab the other?")
    assert garbled("What does the Coastal Hydrogen Lab focus on?") == set()
    assert garbled("Tell me about the grid lab.") == set()
    assert garbled("In which year did the lab open?") == set()


def test_a_garbled_rewrite_falls_back_to_the_question_and_the_previous_topic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The old rule took any words after "And" for a noun phrase; its rewrite is not used.
    monkeypatch.setattr(qa.followup, "_noun_phrase", lambda phrase: True)
    monkeypatch.setattr(qa.followup, "_LEAD", qa.followup.re.compile("(?!)"))
    rewrite = _after("Where is the joint lab located?", "x [1]",
                     "And what does the other lab focus on?")
    assert rewrite.fallback
    assert rewrite.text == "And what does the other lab focus on? (the joint lab)"


def test_an_unresolvable_reference_falls_back_to_the_question_and_the_previous_topic() -> None:
    # No article and one lab in the answer: "the other lab" cannot be named.
    rewrite = _after("Where is the grid lab located?", "The grid lab is in Kestrel Bay. [1]",
                     "And what does the other lab focus on?")
    assert rewrite == Rewrite("What does the other lab focus on? (the grid lab)", True,
                              fallback=True)
    assert garbled(rewrite.text) == set()


def test_no_history_no_rewrite() -> None:
    assert standalone_question("What does the other lab focus on?", []) == Rewrite(
        "What does the other lab focus on?", False)


# End to end: Assistant.ask with the conversation -----------------------------------------------

@pytest.fixture
def lab_services(services: Citeqa) -> Citeqa:
    """Our two articles and a sample article about another lab, in the default collection."""
    ingest_documents([
        Document(id=LABS_DOC, title="Harbourline Energy Opens Two Research Labs", text=LABS),
        Document(id=MERGER_DOC, title="Vantor Foods and Ellesmere Dairy Agree to Merge",
                 text=MERGER),
    ], store=services.store, collection="articles", embedder=services.embedder,
        settings=services.settings)
    from index.loaders import load_file
    ingest_documents(load_file(SAMPLES / "joint-ai-lab.md", doc_id="joint-ai-lab.md",
                               max_bytes=1_000_000),
                     store=services.store, collection="articles", embedder=services.embedder,
                     settings=services.settings)
    return services


def _follow(services: Citeqa, first: str, follow_up: str) -> tuple[str, object]:
    assistant = services.assistant
    previous = assistant.ask(first)
    assert not previous.abstained
    answer = assistant.ask(follow_up, history=[Turn("user", first),
                                               Turn("assistant", previous.answer)])
    return previous.answer, answer


def test_the_other_lab_is_searched_by_name_and_answered_from_its_article(
        lab_services: Citeqa) -> None:
    first = "What will the grid lab study?"
    previous, answer = _follow(lab_services, first, "And what does the other lab focus on?")
    assert "Grid Laboratory" in previous
    assert answer.rewritten_question == "What does the Coastal Hydrogen Lab focus on?"
    assert answer.passages[0].doc_id == LABS_DOC
    assert "The latter will specialize" in answer.passages[0].text
    assert not answer.abstained
    assert answer.citations[0].doc_id == LABS_DOC
    assert "Coastal Hydrogen Lab" in answer.answer
    assert "Grid Laboratory" not in answer.answer


def test_the_answer_about_the_other_lab_says_what_it_focuses_on(lab_services: Citeqa) -> None:
    _, answer = _follow(lab_services, "What will the grid lab study?",
                        "And what does the other lab focus on?")
    assert "hydrogen from seawater" in answer.answer


def test_the_previous_article_is_found_from_the_quoted_answer(lab_services: Citeqa) -> None:
    assistant = lab_services.assistant
    previous = assistant.ask("What will the grid lab study?")
    history = [Turn("user", "What will the grid lab study?"), Turn("assistant", previous.answer)]
    assert assistant.previous_article(history) == LABS
    # A generated (non-quoting) answer, or an abstention, has no article.
    assert assistant.previous_article(
        [Turn("user", "x"), Turn("assistant", "Something nobody wrote. [1]")]) is None
    assert assistant.previous_article([Turn("user", "x")]) is None


def test_the_other_company_follow_up_finds_the_other_company(lab_services: Citeqa) -> None:
    _, answer = _follow(lab_services, "Where is Vantor Foods based?",
                        "What does the other company make?")
    assert answer.rewritten_question == "What does Ellesmere Dairy make?"
    assert answer.citations[0].doc_id == MERGER_DOC
    assert "cheese and butter" in answer.answer
