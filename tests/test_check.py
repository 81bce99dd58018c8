"""The citation check of generated sentences (`qa.check`) with the real embedding model: a
sentence that keeps its passage's words but changes what they say (a negation, a role given to
another person, a number paired with what another number counts) is not supported, and says
why; faithful paraphrases still are."""

from __future__ import annotations

import pytest

from core.documents import ChunkRecord, Document, Sentence
from core.text import sentence_spans
from index.embedding import SentenceTransformerEmbedder
from qa.check import CheckedSentence, check_answer
from qa.retrieve import Candidate

OBSERVATORY = (
    "The Kelderwick Observatory will be run jointly by Dr. Aisha Rahmani, director of the "
    "Institute of Astronomy at Marlow University, and Pieter Valkenburg, chief engineer of "
    "Halden Optics. The two partners have pledged €36 million to the observatory over its "
    "first 8 years. Halden Optics will pay three quarters of the money, while the university "
    "will provide the land. About 45 astronomers will work at the observatory, and the "
    "regional council will fund 12 fellowships a year for young scientists. The telescope cost "
    "£9 million, of which £4 million came from a national science grant. Visitors will not be "
    "charged during the observatory's first month, but guided tours will cost £6 after that. "
    "Rahmani has never led a project of this size before. The dome will take eleven months to "
    "build.")
# Holds the digits 8 and 36 and an €8 million, about something else: a check that only looked
# for the numbers somewhere would accept the recombined sentence here.
FERRY = (
    "The Tollmere harbour ferry carries about 2,000 passengers a day on 6 boats. A new "
    "terminal, which cost €8 million, opened last spring and has 36 berths for bicycles.")


def _passage(embedder: SentenceTransformerEmbedder, doc_id: str, title: str, text: str,
             only: str | None = None) -> Candidate:
    """A retrieved chunk (the whole text) with its sentence vectors, as ingestion stores them;
    with `only`, just the sentence containing it, as `CITEQA_LLM_EVIDENCE=sentences` numbers
    one sentence per passage."""
    spans = sentence_spans(text)
    vectors = embedder.embed_documents([text[s:e] for s, e in spans])
    sentences = tuple(Sentence(s, e, v) for (s, e), v in zip(spans, vectors, strict=True)
                      if only is None or only in text[s:e])
    document = Document(id=doc_id, text=text, title=title)
    return Candidate(ChunkRecord(f"{doc_id}::0", 0, 0, len(text), document, sentences))


@pytest.fixture(scope="module")
def observatory(embedder: SentenceTransformerEmbedder) -> list[Candidate]:
    return [_passage(embedder, "kelderwick.md", "Kelderwick Observatory to open", OBSERVATORY)]


def _check(generated: str, passages: list[Candidate], embedder: SentenceTransformerEmbedder,
           **options: bool) -> CheckedSentence:
    (sentence,) = check_answer(generated, passages, embedder=embedder, **options).sentences
    return sentence


@pytest.mark.parametrize(("generated", "reason"), [
    ("The observatory will not be run by Dr. Aisha Rahmani and Pieter Valkenburg [1].",
     'negates what passage [1] says ("not")'),
    ("The observatory will never be run jointly by Rahmani and Valkenburg [1].",
     'negates what passage [1] says ("never")'),
    ("Neither Rahmani nor Valkenburg will run the Kelderwick Observatory [1].",
     'negates what passage [1] says ("Neither")'),
    ("The Kelderwick Observatory won't be run jointly by Rahmani and Valkenburg [1].",
     'negates what passage [1] says ("won\'t")'),
    ("Halden Optics refused to pay three quarters of the money [1].",
     'negates what passage [1] says ("refused")'),
    ("The university will no longer provide the land for the observatory [1].",
     'negates what passage [1] says ("no longer")'),
    ("Visitors will be charged during the observatory's first month [1].",
     'affirms what passage [1] negates ("not")'),
    ("Rahmani has led a project of this size before [1].",
     'affirms what passage [1] negates ("never")'),
])
def test_a_sentence_that_flips_the_passages_polarity_is_rejected(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder, generated: str,
        reason: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert not checked.supported
    assert checked.reason == reason
    # It shares the passage's words: only the polarity check tells it apart.
    assert checked.score >= 0.55


@pytest.mark.parametrize("generated", [
    "The observatory will not charge visitors during its first month [1].",
    "Rahmani has never led a project this size [1].",
    # The passage's negation is in the other clause of its sentence.
    "Guided tours of the observatory will cost £6 after the first month [1].",
    "The Kelderwick Observatory will be run jointly by Dr. Aisha Rahmani and Pieter "
    "Valkenburg [1].",
])
def test_a_faithful_sentence_keeps_its_polarity_and_is_supported(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder,
        generated: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert checked.supported, checked.reason
    assert checked.passage == 1


@pytest.mark.parametrize(("generated", "reason"), [
    ("The observatory will be run jointly by Pieter Valkenburg, director of the Institute of "
     "Astronomy, and Dr. Aisha Rahmani, chief engineer of Halden Optics [1].",
     "binds 'director' to Valkenburg; passage [1] binds it to Rahmani"),
    ("Aisha Rahmani is the chief engineer of Halden Optics [1].",
     "binds 'chief engineer' to Rahmani; passage [1] binds it to Valkenburg"),
    ("Halden Optics chief engineer Aisha Rahmani will help run the observatory [1].",
     "binds 'chief engineer' to Rahmani; passage [1] binds it to Valkenburg"),
])
def test_a_role_given_to_the_wrong_person_is_rejected(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder, generated: str,
        reason: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert not checked.supported
    assert checked.reason == reason
    assert checked.score >= 0.55


@pytest.mark.parametrize("generated", [
    "The observatory will be run jointly by Dr. Aisha Rahmani, director of the Institute of "
    "Astronomy, and Pieter Valkenburg, chief engineer of Halden Optics [1].",
    "Pieter Valkenburg, chief engineer of Halden Optics, and Aisha Rahmani, director of the "
    "Institute of Astronomy, will run the observatory [1].",
    "Pieter Valkenburg is the chief engineer of Halden Optics [1].",
    "Halden Optics chief engineer Pieter Valkenburg will help run the observatory [1].",
])
def test_roles_kept_with_their_people_are_supported(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder,
        generated: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert checked.supported, checked.reason


@pytest.mark.parametrize(("generated", "reason"), [
    # Both numbers are in the passage, each with the other's noun.
    ("The two partners have pledged €8 million to the observatory over 36 years [1].",
     "states €8 million; passage [1] says €36 million"),
    ("Halden Optics will pay one quarter of the money [1].",
     "states one quarter of the money; passage [1] says three quarters of the money"),
    ("About 12 astronomers will work at the observatory, and the regional council will fund "
     "45 fellowships a year [1].",
     "pairs 12 with 'astronomers'; passage [1] pairs it with 'fellowships' (45 astronomers)"),
    ("The telescope cost £4 million, of which £9 million came from a national science "
     "grant [1].",
     "pairs £4 million with 'cost'; passage [1] pairs 'cost' with £9 million"),
])
def test_a_number_paired_with_what_another_number_counts_is_rejected(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder, generated: str,
        reason: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert not checked.supported
    assert checked.reason == reason
    assert checked.score >= 0.55


@pytest.mark.parametrize("generated", [
    "The partners have pledged €36 million to the observatory over 8 years [1].",
    "Halden Optics will pay three quarters of the money [1].",
    "About 45 astronomers will work at the observatory [1].",
    "The regional council will fund 12 fellowships a year for young scientists [1].",
    "The telescope cost £9 million, and a national science grant paid £4 million of it [1].",
    # Written in digits where the passage spells it out.
    "The dome will take 11 months to build [1].",
])
def test_numbers_kept_with_what_they_count_are_supported(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder,
        generated: str) -> None:
    checked = _check(generated, observatory, embedder)
    assert checked.supported, checked.reason


def test_attribution_rejects_a_recombined_sentence_instead_of_citing_it_elsewhere(
        embedder: SentenceTransformerEmbedder) -> None:
    # One sentence per passage, the whole chunk behind each: the names and numbers of a
    # sentence are looked for in the chunk, so every digit of the recombined sentence is there.
    passages = [
        _passage(embedder, "tollmere.md", "Tollmere ferry", FERRY, only="terminal"),
        _passage(embedder, "kelderwick.md", "Kelderwick Observatory to open", OBSERVATORY,
                 only="pledged"),
        _passage(embedder, "kelderwick.md", "Kelderwick Observatory to open", OBSERVATORY,
                 only="astronomers"),
    ]
    faithful = _check("The partners pledged €36 million to the observatory over 8 years.",
                      passages, embedder, attribute=True)
    assert faithful.supported and faithful.attributed and faithful.passage == 2

    recombined = _check("The partners pledged €8 million to the observatory over 36 years.",
                        passages, embedder, attribute=True)
    assert not recombined.supported and not recombined.attributed
    assert recombined.reason == ("cites no passage, and none supports it: states €8 million; "
                                 "passage [2] says €36 million")

    swapped = _check("About 12 astronomers will work at the observatory, and the council will "
                     "fund 45 fellowships a year [1].", passages, embedder, attribute=True)
    assert not swapped.supported and not swapped.attributed
    assert swapped.cited == (1,)


def test_an_answer_keeps_its_faithful_sentences_and_drops_the_changed_ones(
        observatory: list[Candidate], embedder: SentenceTransformerEmbedder) -> None:
    result = check_answer(
        "The observatory will be run jointly by Dr. Aisha Rahmani and Pieter Valkenburg [1]. "
        "Halden Optics will not pay three quarters of the money [1]. "
        "About 45 astronomers will work there [1].", observatory, embedder=embedder)
    assert [s.text for s in result.supported] == [
        "The observatory will be run jointly by Dr. Aisha Rahmani and Pieter Valkenburg.",
        "About 45 astronomers will work there."]
    (dropped,) = result.unsupported
    assert dropped.reason == 'negates what passage [1] says ("not")'
