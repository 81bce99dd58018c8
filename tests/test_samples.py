"""The bundled sample articles live in their own collection (`make run` puts them in
"samples"): questions reach them only until the user has articles of their own, and the
user's articles never land beside them."""

from __future__ import annotations

import pytest

from citeqa import Citeqa
from citeqa.app import SAMPLES_COLLECTION
from core.documents import Document
from core.errors import NotFound
from tests.conftest import SAMPLES

OWN_ARTICLE = Document(
    id="quay-lab.md", title="Harbourside robotics lab opens",
    text="A robotics lab opened on the Eastquay on Monday. The lab is co-led by Annelie "
         "Brandsma, a marine engineer, and Joost de Wilde, who ran the port's drone trials. "
         "It will test inspection robots on the harbour cranes.",
    date="2026-06-01")
QUESTION = "Who co-leads the lab?"


@pytest.fixture
def with_samples(services: Citeqa) -> Citeqa:
    services.ingest(services.read_locations([str(SAMPLES)]), collection=SAMPLES_COLLECTION)
    return services


def test_until_the_user_has_articles_questions_go_to_the_samples(with_samples: Citeqa) -> None:
    assert with_samples.collection_name(None) == SAMPLES_COLLECTION
    answer = with_samples.ask(QUESTION)
    assert answer.citations and answer.citations[0].doc_id == "joint-ai-lab.md"


def test_the_users_articles_go_to_their_own_collection_and_answer_alone(
        with_samples: Citeqa) -> None:
    report = with_samples.ingest([OWN_ARTICLE])

    assert report.added == ["quay-lab.md"]
    assert with_samples.collection_name(None) == "articles"
    answer = with_samples.ask(QUESTION)
    assert {c.doc_id for c in answer.citations} == {"quay-lab.md"}
    assert {p.doc_id for p in answer.passages} == {"quay-lab.md"}
    # The samples are still there, asked by name.
    named = with_samples.ask(QUESTION, collection=SAMPLES_COLLECTION)
    assert named.citations[0].doc_id == "joint-ai-lab.md"


def test_a_configured_collection_is_never_swapped_for_the_samples(with_samples: Citeqa) -> None:
    configured = Citeqa(with_samples.settings.model_copy(update={"collection": "news"}),
                        store=with_samples.store, embedder=with_samples.embedder)
    with pytest.raises(NotFound):
        configured.ask(QUESTION)
