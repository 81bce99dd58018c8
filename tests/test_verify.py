"""`Citeqa.verify`: any text checked sentence by sentence against the sample articles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import islice

import numpy as np
import pytest

from citeqa.app import Citeqa
from core.documents import Filters
from core.errors import CiteqaError, InvalidInput, NotFound, TooLarge
from core.settings import Settings
from index.embedding import SentenceTransformerEmbedder
from qa.claims import not_checkable_reason
from qa.verify import CheckedStatement, Verdict

pytestmark = pytest.mark.slow


def checked(app: Citeqa, sentence: str) -> CheckedStatement:
    """The one checked statement of a one-sentence text."""
    result = app.verify(sentence, collection="articles")
    assert len(result.sentences) == 1
    return result.sentences[0]


def test_a_chatbot_answer_gets_a_verdict_per_sentence(sample_services: Citeqa) -> None:
    answer = ("Sure! The Northgate-Corvalis AI Lab will open in September 2026 in Rotterdam. "
              "About 60 researchers will work at the lab. "
              "A new football stadium will be built in Rotterdam by 2030.")
    result = sample_services.verify(answer, collection="articles")
    verdicts = [s.verdict for s in result.sentences]
    assert verdicts == [Verdict.NOT_CHECKABLE, Verdict.SUPPORTED, Verdict.SUPPORTED,
                        Verdict.UNSUPPORTED]
    assert result.counts == {"supported": 2, "contradicted": 0, "unsupported": 1,
                             "not_checkable": 1}
    assert result.collection == "articles"
    for sentence in result.sentences:
        assert answer[sentence.start:sentence.end] == sentence.text
        assert 0.0 <= sentence.score <= 1.0


def test_supported_sentence_cites_the_exact_span_it_restates(sample_services: Citeqa) -> None:
    sentence = checked(sample_services, "Governor Klara Hendriksen said inflation would stay "
                                        "near the 2 percent target.")
    assert sentence.verdict == Verdict.SUPPORTED
    [evidence] = sentence.evidence
    document = sample_services.document(evidence.doc_id, "articles").document
    assert document.text[evidence.start:evidence.end] == evidence.quote
    assert "Klara Hendriksen" in evidence.quote


@pytest.mark.parametrize("reworded", [
    # Other words for the same things, as a summary or a chatbot writes them.
    "During the renovation, conservators found a hidden sketch of a fishing boat under the "
    "paint of The Salt Harvest.",
    "Admission is free during the first weekend, and the museum expects around 15,000 guests "
    "on Saturday and Sunday.",
    "The Castellan Museum of Art reopened to visitors on Saturday after a three-year "
    "refurbishment that replaced its leaking roof.",
])
def test_a_sentence_reworded_with_synonyms_stays_supported(sample_services: Citeqa,
                                                           reworded: str) -> None:
    sentence = checked(sample_services, reworded)
    assert sentence.verdict == Verdict.SUPPORTED, sentence.reason


def test_unsupported_sentence_says_nothing_close(sample_services: Citeqa) -> None:
    sentence = checked(sample_services, "The city council approved a new ferry line to "
                                        "Antwerp last winter.")
    assert sentence.verdict == Verdict.UNSUPPORTED
    assert sentence.reason


@pytest.mark.parametrize(("claim", "expected_in_reason"), [
    # Another person in the same role.
    ("The lab will be co-led by Dr. Miriam Okafor and Pieter Jansen.", "Pieter Jansen"),
    # Another figure with the same unit.
    ("The two partners have committed €52 million to the lab over its first five years.",
     "€48 million"),
    # Another date for the same event.
    ("The Northgate-Corvalis AI Lab will open in March 2026.", "September"),
    # Negation.
    ("Papers produced by the lab will not be published openly.", "not"),
    # A one-word place in place of the article's.
    ("The vaccine was developed by Halcyon Biologics, based in Paris.", "Lyon"),
    # The runner-up named as the winner.
    ("Nino Kavtaradze won the Lakeshore Chess Festival.", "Priya Raman"),
    # Another thing in the article's place, in ordinary words.
    ("During the renovation, conservators found a hidden sketch of a sailing ship beneath "
     "the paint of The Salt Harvest.", 'where the article says "fishing boat"'),
    # One word in a long sentence.
    ("The Castellan Museum of Art reopened to the public on Saturday after a three-year "
     "renovation that replaced its leaking windows and added a new wing for modern art.",
     'says "windows" where the article says "roof"'),
    # A hyphenated figure, named as written in both.
    ("The Castellan Museum reopened after a five-year renovation.", "Three-Year"),
])
def test_contradicted_sentences_cite_what_the_article_says(
        sample_services: Citeqa, claim: str, expected_in_reason: str) -> None:
    sentence = checked(sample_services, claim)
    assert sentence.verdict == Verdict.CONTRADICTED, sentence.reason
    assert sentence.reason is not None and expected_in_reason in sentence.reason
    [evidence] = sentence.evidence
    document = sample_services.document(evidence.doc_id, "articles").document
    assert document.text[evidence.start:evidence.end] == evidence.quote



def test_a_claim_joining_two_sentences_of_an_article_cites_both(
        sample_services: Citeqa) -> None:
    sentence = checked(sample_services, "Fernleaf Robotics raised $35 million in a Series B "
                                        "round led by Marlow Peak Ventures.")
    assert sentence.verdict == Verdict.SUPPORTED
    quotes = " ".join(e.quote for e in sentence.evidence)
    assert "$35 million" in quotes and "Marlow Peak Ventures" in quotes


@pytest.mark.parametrize(("sentence", "why"), [
    ("Is the lab in Rotterdam?", "question"),
    ("Hello there, thanks for asking!", "greeting"),
    ("The lab is a wonderful idea.", "opinion"),
    ("I think the rate cut came too late.", "view"),
    ("Perhaps the museum reopens next year.", "hedged"),
    ("Good point.", "short"),
])
def test_sentences_stating_no_fact_are_not_checkable(sentence: str, why: str) -> None:
    reason = not_checkable_reason(sentence)
    assert reason is not None and why in reason


def test_factual_sentences_are_checkable() -> None:
    assert not_checkable_reason("The Bank of Esterland cut its rate to 3.50 percent.") is None
    # Someone else's words, quoted, are reported: the writer asserts that they were said.
    assert not_checkable_reason('Okafor said: "I think we will probably open in '
                                'September."') is None
    # An evaluative word does not hide a fact an article can confirm.
    assert not_checkable_reason("Critics called the €48 million lab a great bet.") is None


def test_offsets_round_trip_through_odd_spacing(sample_services: Citeqa) -> None:
    text = ("  The lab will open in September 2026.\n\n  Is that right?   "
            "About 60 researchers will work at the lab.\t")
    result = sample_services.verify(text, collection="articles")
    assert [text[s.start:s.end] for s in result.sentences] == [s.text for s in
                                                               result.sentences]
    assert len(result.sentences) == 3


def test_filters_limit_the_evidence_to_the_chosen_articles(sample_services: Citeqa) -> None:
    claim = "About 60 researchers will work at the lab."
    assert checked(sample_services, claim).verdict == Verdict.SUPPORTED
    elsewhere = sample_services.verify(claim, collection="articles", filters=Filters(
        doc_ids=("deep-sea-shrimp.md",)))
    [sentence] = elsewhere.sentences
    assert sentence.verdict == Verdict.UNSUPPORTED
    assert all(e.doc_id == "deep-sea-shrimp.md" for e in sentence.evidence)


def test_the_stream_gives_the_same_verdicts_as_the_whole(sample_services: Citeqa) -> None:
    text = ("The lab will open in March 2026. Is the lab in Rotterdam? "
            "About 60 researchers will work at the lab.")
    whole = sample_services.verify(text, collection="articles")
    streamed = list(sample_services.verify_stream(text, collection="articles"))
    assert streamed == whole.sentences
    assert [s.verdict for s in streamed] == [Verdict.CONTRADICTED, Verdict.NOT_CHECKABLE,
                                             Verdict.SUPPORTED]


def test_as_of_leaves_out_later_articles(sample_services: Citeqa) -> None:
    claim = "The Bank of Esterland cut its main interest rate to 3.50 percent."
    assert checked(sample_services, claim).verdict == Verdict.SUPPORTED
    before = sample_services.verify(claim, collection="articles", as_of=date(2026, 1, 1))
    assert before.as_of == "2026-01-01"
    assert before.sentences[0].verdict == Verdict.UNSUPPORTED


@pytest.mark.parametrize(("text", "error", "code"), [
    ("", InvalidInput, "empty_text"),
    ("   \n\t ", InvalidInput, "empty_text"),
    ("%PDF-1.7\x00\x01\x02 binary stream", InvalidInput, "binary_text"),
    ("The lab opens\x07 in September.", InvalidInput, "binary_text"),
    ("a" * 1_000_001, TooLarge, "text_too_long"),
])
def test_bad_texts_are_refused_before_any_check(
        sample_services: Citeqa, text: str, error: type[CiteqaError], code: str) -> None:
    with pytest.raises(error) as raised:
        sample_services.verify_stream(text, collection="articles")
    assert raised.value.code == code


def test_unknown_collection_is_refused_before_the_stream(sample_services: Citeqa) -> None:
    with pytest.raises(NotFound):
        sample_services.verify_stream("The lab opens in September.", collection="nowhere")


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.embedded = 0
        self.name = inner.name
        self.dimension = inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Count, then embed."""
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """Count, then embed."""
        self.embedded += 1
        return self.inner.embed_query(text)


def test_too_many_sentences_are_refused_naming_the_limit(sample_services: Citeqa) -> None:
    text = "The lab will open in September 2026. " * 5_001
    with pytest.raises(TooLarge) as raised:
        sample_services.verify_stream(text, collection="articles")
    assert raised.value.code == "too_many_sentences"
    assert "CITEQA_MAX_VERIFY_SENTENCES" in raised.value.detail


def test_a_long_text_streams_its_first_verdicts_before_the_rest_is_read(
        sample_settings: Settings, embedder: SentenceTransformerEmbedder) -> None:
    counting = CountingEmbedder(embedder)
    app = Citeqa(sample_settings, embedder=counting)
    # 5,000 sentences of 34 characters: the most sentences allowed.
    text = "The lab opens in September 2026. " * 5_000
    stream = app.verify_stream(text, collection="articles")
    first = list(islice(stream, 3))
    assert [s.verdict for s in first] == [Verdict.SUPPORTED] * 3
    assert all("joint-ai-lab" in s.evidence[0].doc_id for s in first)
    # Only the first block of sentences was embedded, not all 5,000.
    assert 3 <= counting.embedded < 100
    stream.close()  # type: ignore[attr-defined]
