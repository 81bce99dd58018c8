"""The verification set builder of `make eval-verify` (bench/verify_set.py), on small records
of our own in RealTimeQA's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.near_miss import half, kept_in_half_collection
from bench.verify_eval import Checked, score_news, statement_verdict
from bench.verify_set import (
    AnswerSentence,
    Statement,
    answer_sentence,
    build_verify_set,
    reword,
    swap_answer,
    write_jsonl,
)
from citeqa.app import Citeqa
from index.loaders import load_sources

# (answer, choices, passage); question ids syn-0 ... syn-7. By the project's hashes, syn-1
# (check half) and syn-6 (tuning half) are held out of the collection, the others kept.
RECORDS: list[tuple[str, list[str], str]] = [
    ("6 percent", ["4 percent", "6 percent", "9 percent", "12 percent"],
     "Harbour pilots in Venmark stopped work for three days. The stoppage ended when the port "
     "authority offered a 6 percent raise, officials said."),
    ("Kirrin Observatory", ["Kirrin Observatory", "Halden Observatory", "Moss Institute",
                            "Ferrow Lab"],
     "A faint comet will pass near Earth in October. Astronomers at the Kirrin Observatory "
     "spotted it first."),
    ("Lindgren Philharmonic", ["Lindgren Philharmonic", "Oster Quartet", "Varna Choir",
                               "Bellow Band"],
     "According to its manager, the Lindgren Philharmonic sold every seat for its winter "
     "season."),
    ("Porth Ederyn", ["Porth Ederyn", "Llanfaes", "Caer Wyn", "Aberdu"],
     "On Tuesday, the glassworks of Porth Ederyn announced it would hire 120 apprentices."),
    ("Quinces", ["Pears", "Quinces", "Plums", "Apples"],
     "Growers in the Aldwick valley picked a bumper crop of quinces."),
    ("Brightwater Lines", ["Greyhaven Ferries", "Brightwater Lines", "Saltmarsh Shipping",
                           "Northsea Boats"],
     "The ferry operator Brightwater Lines said its newest vessel runs on hydrogen. Its rival, "
     "Greyhaven Ferries, still burns diesel."),
    # Held out, but restating syn-3's kept passage: dropped from the unsupported statements.
    ("120", ["80", "120", "150", "200"],
     "The glassworks of Porth Ederyn would hire 120 apprentices, it announced on Tuesday."),
    ("Said Benali", ["Said Benali", "Omar Tazi", "Lina Haddad", "Yusuf Amrani"],
     "Said Benali, the mayor of Cordova Sands, said the library would open in May."),
]


def questions_and_corpus() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """RealTimeQA-shaped questions and passages from RECORDS, plus two that give nothing."""
    questions: list[dict[str, Any]] = []
    corpus: list[dict[str, Any]] = []
    extra = [("Lyon", ["Lyon", "Nice", "Metz", "Caen"], "The Lyonnaise bakers met in March.",
              True),
             ("Oslo", ["Oslo", "Bergen", "Tromso", "Bodo"], "A new tram line opened.", False)]
    rows = [(*record, True) for record in RECORDS] + extra
    for i, (answer, choices, passage, in_evidence) in enumerate(rows):
        questions.append({"id": f"syn-{i}", "question": "?", "answers": [answer],
                          "choices": choices, "gold_doc_ids": [f"ev-syn-{i}"],
                          "answer_in_evidence": in_evidence})
        corpus.append({"id": f"ev-syn-{i}", "title": f"Story {i}", "text": passage})
    return questions, corpus


def test_the_synthetic_ids_fall_where_the_tests_expect() -> None:
    held_out = [f"syn-{i}" for i in range(8) if not kept_in_half_collection(f"syn-{i}")]
    assert held_out == ["syn-1", "syn-6"]
    assert {half(f"syn-{i}") for i in range(8)} == {"tune", "check"}


def test_the_sentence_holding_the_answer_is_found() -> None:
    passage = RECORDS[1][2]
    found = answer_sentence(passage, "kirrin observatory")
    assert found == AnswerSentence("Astronomers at the Kirrin Observatory spotted it first.",
                                   19, 37)
    assert found.sentence[found.start:found.end] == "Kirrin Observatory"
    # A whole word only: "Lyon" is not in "Lyonnaise".
    assert answer_sentence("The Lyonnaise bakers met in March.", "Lyon") is None


def test_the_swap_replaces_exactly_the_answer() -> None:
    answer, choices, passage = RECORDS[0]
    found = answer_sentence(passage, answer)
    assert found is not None
    swapped = swap_answer(found, answer, choices, passage)
    assert swapped == ("The stoppage ended when the port authority offered a 4 percent raise, "
                       "officials said.")


def test_the_swap_skips_a_wrong_choice_the_passage_holds() -> None:
    answer, choices, passage = RECORDS[5]
    found = answer_sentence(passage, answer)
    assert found is not None
    swapped = swap_answer(found, answer, choices, passage)
    assert swapped == ("The ferry operator Saltmarsh Shipping said its newest vessel runs on "
                       "hydrogen.")
    every_choice_there = f"{passage} Saltmarsh Shipping and Northsea Boats are smaller."
    assert swap_answer(found, answer, choices, every_choice_there) is None


def test_the_swap_of_a_lower_case_answer_is_lower_case() -> None:
    answer, choices, passage = RECORDS[4]
    found = answer_sentence(passage, answer)
    assert found is not None
    assert swap_answer(found, answer, choices, passage) == (
        "Growers in the Aldwick valley picked a bumper crop of pears.")


@pytest.mark.parametrize(("index", "expected"), [
    (0, "Officials stated that the stoppage ended when the port authority offered a 6 percent "
        "raise."),
    (2, "The Lindgren Philharmonic sold every seat for its winter season, according to its "
        "manager."),
    (3, "The glassworks of Porth Ederyn revealed it would hire 120 apprentices on Tuesday."),
    # "Said" in the answer is a name, not a reporting verb: only the verb changes.
    (7, "Said Benali, the mayor of Cordova Sands, stated the library would open in May."),
])
def test_rewording_keeps_the_answer_and_changes_the_wording(index: int, expected: str) -> None:
    answer, _, passage = RECORDS[index]
    found = answer_sentence(passage, answer)
    assert found is not None
    reworded = reword(found)
    assert reworded == expected
    assert reworded != found.sentence
    assert found.sentence[found.start:found.end] in reworded


def test_a_sentence_no_rule_fits_is_not_reworded() -> None:
    found = answer_sentence(RECORDS[4][2], RECORDS[4][0])
    assert found is not None
    assert reword(found) is None


def test_the_set_has_each_kind_from_the_right_passages() -> None:
    questions, corpus = questions_and_corpus()
    built = build_verify_set(questions, corpus)
    kinds = {s.id: s.kind for s in built.statements}
    assert kinds["syn-1~held_out"] == "held_out"
    assert "syn-6~held_out" not in kinds
    assert {"syn-0~original", "syn-0~reworded", "syn-0~swapped"} <= set(kinds)
    assert not any(i.startswith(("syn-8", "syn-9")) for i in kinds)
    assert built.skipped == {"answer_not_in_a_sentence": 1, "no_rewording_rule": 1,
                             "every_wrong_choice_in_passage": 0,
                             "held_out_restated_in_kept": 1}
    expected = {"original": "supported", "reworded": "supported", "swapped": "contradicted",
                "held_out": "unsupported"}
    assert all(s.expected == expected[s.kind] for s in built.statements)
    shapes = {s.id: s.answer_shape for s in built.statements}
    assert shapes["syn-0~swapped"] == shapes["syn-5~swapped"] == "name_or_number"
    assert shapes["syn-4~swapped"] == "common_word"


def test_halves_are_disjoint_and_deterministic() -> None:
    questions, corpus = questions_and_corpus()
    first = build_verify_set(questions, corpus)
    again = build_verify_set(list(reversed(questions)), list(reversed(corpus)))
    assert first.statements  # the order of the input changes nothing
    assert {s.id: s for s in first.statements} == {s.id: s for s in again.statements}
    by_half: dict[str, set[str]] = {"tune": set(), "check": set()}
    for statement in first.statements:
        question = statement.id.split("~")[0]
        assert statement.half == half(question)
        by_half[statement.half].add(question)
    # Every statement of a question (original, reworded, swapped) is in that question's half.
    assert by_half["tune"] and by_half["check"]
    assert not by_half["tune"] & by_half["check"]


@pytest.mark.slow
def test_held_out_passages_are_not_in_the_collection(tmp_path: Path,
                                                     services: Citeqa) -> None:
    questions, corpus = questions_and_corpus()
    built = build_verify_set(questions, corpus)
    assert built.held_out_ids == {"ev-syn-1", "ev-syn-6"}
    path = write_jsonl(tmp_path / "kept.jsonl", built.kept_passages)
    services.ingest(list(load_sources([path], max_bytes=10**6)), collection="verify-kept")
    ingested = {d.document.id for d in services.documents("verify-kept")}
    assert ingested == {p["id"] for p in corpus} - built.held_out_ids
    for statement in built.statements:
        assert (statement.doc_id in ingested) == (statement.kind != "held_out")


def test_a_statement_cut_in_two_gets_one_verdict() -> None:
    assert statement_verdict(["supported", "not_checkable"]) == "supported"
    assert statement_verdict(["supported", "unsupported"]) == "unsupported"
    assert statement_verdict(["unsupported", "contradicted"]) == "contradicted"
    assert statement_verdict(["not_checkable"]) == "not_checkable"


def test_precision_and_recall_count_each_verdict_against_the_expected_one() -> None:
    def item(kind: str, verdict: str) -> Checked:
        expected = {"original": "supported", "swapped": "contradicted",
                    "held_out": "unsupported"}[kind]
        return Checked(Statement(f"x~{kind}", kind, "text", "doc", "check", expected),
                       verdict, [], 1, 10.0)

    figures = score_news([item("original", "supported"), item("original", "unsupported"),
                          item("swapped", "supported"), item("swapped", "contradicted"),
                          item("held_out", "unsupported"), item("held_out", "not_checkable")])
    supported = figures["per_verdict"]["supported"]
    assert (supported["precision"], supported["recall"]) == (0.5, 0.5)
    assert figures["per_verdict"]["unsupported"]["precision"] == 0.5
    assert figures["per_verdict"]["not_checkable"]["marked"] == 1
    assert figures["swapped_marked_supported"] == 0.5
    assert figures["confusion"]["unsupported"]["not_checkable"] == 1
