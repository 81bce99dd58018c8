"""Stage 4 — answer extraction: pick the sentences of the top passages that answer the question.

Every sentence of the top passages is described by a handful of features (`sentence_features`):
how close it is to the question, alone and read with the sentence before it; how many of the
question's rare words it and its neighbours hold; whether its context (neighbours, title) states
the question's names and quantities, or contradicts one; whether it holds a fact of the asked
kind; how its passage ranked; whether it is a heading, a fragment or opens with a reference.
A linear model fitted on the dev sets' tuning halves (`qa/fitted/answer_selection.json`, by
`make train`) scores them.

The best sentence is quoted; when it opens with a reference the reader cannot follow alone
("It has...", "The latter will...") its antecedent sentence is quoted with it, as one span. A
second sentence joins only from the same article, unless the question compares things; then
each quote is labelled with its article. A heading is never an answer on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.documents import Document
from core.text import search_tokens, sentence_spans
from index.embedding import Embedder
from qa.constraints import agreement
from qa.draft import AnswerSentence, Draft, TokenCallback
from qa.entities import has_answer_type
from qa.followup import Turn
from qa.linear import LinearModel
from qa.question import AnswerType, Question
from qa.retrieve import Candidate

# The features the selection model reads, computed for every candidate sentence.
SENTENCE_FEATURES = (
    "similarity", "similarity_with_previous", "best_in_passage", "passage_rank",
    "passage_fused", "passage_dense", "passage_lexical", "coverage", "rare_coverage",
    "context_rare_coverage", "prior",
    "document_rare_coverage", "names_in_context", "names_in_document", "quantities_in_sentence",
    "quantities_in_context",
    "contradicted", "typed", "new_words", "opens_with_reference", "short", "long", "heading",
    "focus_in_sentence", "focus_in_context", "focus_in_document", "missing_number",
    "missing_date", "missing_person", "missing_place", "missing_organisation", "missing_name",
)
# Question-level features added for the support model: how the best answer stood out.
ANSWER_FEATURES = ("score", "margin", "has_names", "has_quantities", "typed_question",
                   "has_focus")
# What the support model reads about the chosen answer.
SUPPORT_FEATURES = (
    "similarity", "similarity_with_previous", "passage_dense", "passage_fused", "coverage",
    "rare_coverage", "context_rare_coverage", "document_rare_coverage", "rare_missing",
    "names_in_sentence", "names_in_context", "names_in_document", "quantities_in_context",
    "contradicted", "typed", "new_words", "focus_in_sentence", "focus_in_context",
    "focus_in_document", "missing_number", "missing_date", "missing_person", "missing_place",
    "missing_organisation", "missing_name", *ANSWER_FEATURES,
)

# A sentence opening with one of these leans on the one before it ("The latter will...").
_REFERENCE = re.compile(
    r"^[\"“‘']?(?:(?:in fact|indeed|moreover|meanwhile|also|on (?:the other hand|its part)|"
    r"at the same time|for (?:its|his|her|their) part|in turn),?\s+)?"
    r"(?:it|its|he|she|his|her|they|their|them|this|these|those|such|there|"
    r"the latter|the former|however|in addition|instead)\b", re.I)
_COMPARE = re.compile(
    r"\b(?:compare[sd]?|comparison|differ(?:s|ence|ent)?|versus|vs\.?|both|each of|"
    r"which of the two|more than|less than|unlike)\b", re.I)
_RECOGNISED = (AnswerType.NUMBER, AnswerType.DATE, AnswerType.PERSON, AnswerType.PLACE,
               AnswerType.ORGANISATION, AnswerType.NAME)
# A sentence within this fraction of the best one's selection probability contends with it
# on how much of the question it states.
# A further sentence joins the answer when the model rates it at least this fraction as
# likely as the best one (selection probabilities over all candidate sentences).
SECOND_SENTENCE_RATIO = 0.5


@dataclass(frozen=True)
class CandidateSentence:
    """A sentence of a retrieved passage, with its neighbours' spans and stored vectors."""

    candidate: Candidate
    rank: int
    start: int
    end: int
    vector: np.ndarray | None
    previous: tuple[int, int] | None
    following: tuple[int, int] | None
    previous_vector: np.ndarray | None

    @property
    def document(self) -> Document:
        """The document the sentence is in."""
        return self.candidate.record.document

    @property
    def text(self) -> str:
        """The sentence, exactly as it stands in its document."""
        return self.document.text[self.start:self.end]


class ExtractiveAnswerer:
    """Answers with sentences quoted from the passages; needs no LLM."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        passages: int = 10,
        max_sentences: int = 2,
        max_candidates: int = 150,
        selection: LinearModel | None = None,
    ) -> None:
        if passages < 1 or max_sentences < 1 or max_candidates < 1:
            raise ValueError(
                f"passages ({passages}), max_sentences ({max_sentences}) and max_candidates "
                f"({max_candidates}) must all be positive"
            )
        self.embedder = embedder
        self.passages = passages
        self.max_sentences = max_sentences
        self.max_candidates = max_candidates
        self.selection = selection or LinearModel.load("answer_selection")
        missing = set(self.selection.features) - set(SENTENCE_FEATURES)
        if missing:
            raise ValueError(f"the selection model reads unknown features: {sorted(missing)}")

    def answer(self, question: Question, candidates: list[Candidate],
               query_vector: np.ndarray, *, history: Sequence[Turn] = (),
               on_token: TokenCallback | None = None) -> Draft:
        """The best quotes of the top passages, best first, with the support evidence (the
        question arrives standalone, so `history` is not read; nothing is streamed)."""
        sentences = self.candidate_sentences(candidates)
        if not sentences:
            return Draft([])
        rows = sentence_features(question, sentences, query_vector, embedder=self.embedder)
        return self.choose(question, sentences, rows)

    def choose(self, question: Question, sentences: Sequence[CandidateSentence],
               rows: Sequence[Mapping[str, float]]) -> Draft:
        """The quotes the selection model prefers among described candidate sentences."""
        if not sentences:
            return Draft([])
        scores = self.selection.scores(self.selection.matrix(rows))
        # Selection probabilities: how the model shares its belief among the candidates.
        shares = np.exp(scores - scores.max())
        shares /= shares.sum()
        # A heading is never an answer on its own; a sentence whose context states another
        # number of the asked kind (a 7.3 quake for "the 5.2-magnitude quake") comes last.
        order = sorted((int(i) for i in np.argsort(-scores) if not rows[int(i)]["heading"]),
                       key=lambda i: rows[i]["contradicted"])
        if not order:
            return Draft([])
        best = order[0]
        chosen = [best]
        compares = bool(_COMPARE.search(question.text))
        for index in order[1:]:
            if len(chosen) >= self.max_sentences or shares[index] < (
                    SECOND_SENTENCE_RATIO * shares[best]):
                break
            same_article = (sentences[index].document.id == sentences[best].document.id)
            if (same_article or compares) and not _overlaps(sentences[index], chosen,
                                                             sentences):
                chosen.append(index)
        quotes = _quotes([sentences[i] for i in chosen], [rows[i] for i in chosen],
                         [float(shares[i]) for i in chosen])
        other = [i for i in order if sentences[i].document.id != sentences[best].document.id]
        evidence = dict(rows[best])
        evidence["score"] = float(scores[best])
        # How far the best answer stands above the best one another article offers.
        evidence["margin"] = float(scores[best] - scores[other[0]]) if other else 5.0
        evidence["has_names"] = float(bool(question.constraints.names))
        evidence["has_quantities"] = float(bool(question.constraints.quantities))
        evidence["typed_question"] = float(question.answer_type is not AnswerType.OTHER)
        evidence["has_focus"] = float(bool(question.focus))
        return Draft(quotes, evidence)

    def candidate_sentences(self, candidates: list[Candidate]) -> list[CandidateSentence]:
        """The sentences of the top passages (each once), with their neighbours' spans."""
        candidates = candidates[: self.passages]
        seen: set[tuple[str, int]] = set()
        spans_of: dict[str, list[tuple[int, int]]] = {}
        out: list[CandidateSentence] = []
        for rank, candidate in enumerate(candidates):
            record = candidate.record
            document = record.document
            if document.id not in spans_of:
                spans_of[document.id] = sentence_spans(document.text)
            spans = spans_of[document.id]
            position = {start: i for i, (start, _) in enumerate(spans)}
            stored = [(s.start, s.end, s.vector) for s in record.sentences] or [
                (start, end, None) for start, end in sentence_spans(document.text, record.start,
                                                                    record.end)]
            vectors = {start: vector for start, _, vector in stored}
            for start, end, vector in stored:
                if (document.id, start) in seen:
                    continue
                seen.add((document.id, start))
                at = position.get(start)
                previous = spans[at - 1] if at is not None and at > 0 else None
                following = spans[at + 1] if at is not None and at + 1 < len(spans) else None
                out.append(CandidateSentence(
                    candidate, rank, start, end, vector, previous, following,
                    vectors.get(previous[0]) if previous else None))
                if len(out) >= self.max_candidates:
                    return out
        return out


def sentence_features(question: Question, sentences: Sequence[CandidateSentence],
                      query_vector: np.ndarray, *, embedder: Embedder
                      ) -> list[dict[str, float]]:
    """The features of each candidate sentence (`SENTENCE_FEATURES`), in order."""
    query = np.asarray(query_vector, dtype=np.float32)
    texts = [s.candidate.record.document.text[s.start:s.end] for s in sentences]
    stored = [s.vector for s in sentences]
    if all(v is not None for v in stored):
        vectors = np.stack([np.asarray(v, dtype=np.float32) for v in stored])
    else:
        # Stored without sentence vectors (another store): embed them now.
        vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    similarities = vectors @ query
    asked = set(question.tokens)
    weights = question.weights or _uniform(asked)
    total = sum(weights.get(t, 0.0) for t in asked) or 1.0

    def rare_share(tokens: set[str]) -> float:
        return sum(weights.get(t, 0.0) for t in asked & tokens) / total

    best_in_chunk: dict[str, float] = {}
    for sentence, similarity in zip(sentences, similarities, strict=True):
        chunk = sentence.candidate.record.chunk_id
        best_in_chunk[chunk] = max(best_in_chunk.get(chunk, -1.0), float(similarity))
    fused_top = max(s.candidate.fused for s in sentences) or 1.0
    lexical_top = max((s.candidate.lexical or 0.0) for s in sentences) or 1.0
    document_cache: dict[str, tuple[set[str], float]] = {}
    focus = set(question.focus)
    rows = []
    for sentence, text, vector, similarity in zip(sentences, texts, vectors, similarities,
                                                  strict=True):
        record = sentence.candidate.record
        document = record.document
        if document.id not in document_cache:
            document_cache[document.id] = (
                set(search_tokens(document.title)).union(search_tokens(document.text)),
                agreement(question.constraints, document.title, document.text).names_found)
        document_tokens, names_in_document = document_cache[document.id]
        # A sentence leaning on the one before it ("It has also...") is quoted with it, so it
        # is judged with it.
        leans = bool(_REFERENCE.match(text)) and sentence.previous is not None
        quoted = f"{_slice(document, sentence.previous)} {text}" if leans else text
        context = (document.title, _slice(document, sentence.previous), text,
                   _slice(document, sentence.following))
        tokens = set(search_tokens(quoted))
        # The union of its parts' tokens (each part is split once and reused by the
        # sentences around it): no word spans the spaces that join them.
        context_tokens = set().union(*map(search_tokens, context))
        in_sentence = agreement(question.constraints, quoted)
        in_context = agreement(question.constraints, *context)
        with_previous = float(similarity)
        if sentence.previous_vector is not None:
            merged = vector + np.asarray(sentence.previous_vector, dtype=np.float32)
            norm = float(np.linalg.norm(merged))
            if norm > 0:
                with_previous = float(merged @ query) / norm
        typed = question.answer_type is not AnswerType.OTHER and has_answer_type(
            quoted, question.answer_type, question.text)
        words = len(text.split())
        rows.append({
            "similarity": with_previous if leans else float(similarity),
            "similarity_with_previous": with_previous,
            "best_in_passage": float(similarity) - best_in_chunk[record.chunk_id],
            "passage_rank": 1.0 / (1 + sentence.rank),
            "passage_fused": sentence.candidate.fused / fused_top,
            "passage_dense": sentence.candidate.dense or 0.0,
            "passage_lexical": (sentence.candidate.lexical or 0.0) / lexical_top,
            "coverage": len(asked & tokens) / len(asked) if asked else 0.0,
            "rare_coverage": rare_share(tokens),
            "context_rare_coverage": rare_share(context_tokens),
            "document_rare_coverage": rare_share(document_tokens),
            "rare_missing": sum(weights.get(t, 0.0) for t in asked - context_tokens),
            "names_in_sentence": in_sentence.names_found,
            "names_in_context": in_context.names_found,
            "names_in_document": names_in_document,
            "quantities_in_sentence": in_sentence.quantities_found,
            "quantities_in_context": in_context.quantities_found,
            "contradicted": float(in_context.contradicted),
            "typed": float(typed),
            # The asked kind of fact is missing from the quote, one feature per kind: the
            # recognisers of numbers and dates are more reliable than those of names.
            **{f"missing_{kind.value}": float(question.answer_type is kind and not typed)
               for kind in _RECOGNISED},
            "new_words": len(tokens - asked) / len(tokens) if tokens else 0.0,
            "opens_with_reference": float(bool(_REFERENCE.match(text))),
            "short": float(words < 6),
            "long": float(words > 60),
            "heading": float(is_heading(text)),
            # The hand-weighted score citeqa used before the fitted model, as one feature: a
            # prior the fit can lean on where its other features say little.
            "prior": (0.55 * float(similarity) + 0.35 * rare_share(tokens) + 0.10 * float(typed)
                      + 0.05 / (1 + sentence.rank)),
            "focus_in_sentence": _share(focus, tokens),
            "focus_in_context": _share(focus, context_tokens),
            "focus_in_document": _share(focus, document_tokens),
        })
    return rows


def _share(wanted: set[str], found: set[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0


def is_heading(sentence: str) -> bool:
    """A title or section heading, or a short lead-in to what follows ("Zhou Jingren
    explains:"): short, and not ended like a sentence that states something."""
    stripped = sentence.strip()
    if stripped.startswith("#"):
        return True
    words = len(stripped.split())
    return words < 12 and not stripped.rstrip("\"'”’)] ").endswith((".", "!", "?", ";"))


def _quotes(chosen: list[CandidateSentence], rows: Sequence[Mapping[str, float]],
            shares: list[float]) -> list[AnswerSentence]:
    """The answer's quotes: each chosen sentence with its antecedent when it needs one;
    sentences of one article that touch are one quote (one contiguous span, one citation)."""
    spans: list[list[Any]] = []  # [sentence, start, end, row, share], in the order chosen
    for sentence, row, share in zip(chosen, rows, shares, strict=True):
        start = sentence.start
        previous = sentence.previous
        text = sentence.document.text
        if (row["opens_with_reference"] and previous is not None
                and not is_heading(text[previous[0]:previous[1]])):
            start = previous[0]
        for span in spans:
            if (span[0].document.id == sentence.document.id and start <= span[2]
                    and sentence.end >= span[1]):
                span[1], span[2] = min(span[1], start), max(span[2], sentence.end)
                break
        else:
            spans.append([sentence, start, sentence.end, row, share])
    articles = {span[0].document.id for span in spans}
    quotes = []
    for sentence, start, end, row, share in spans:
        label = None
        if len(articles) > 1:
            # Quotes from two articles say which is which: they may be about two things.
            label = f"According to {sentence.document.title or sentence.document.id}:"
        quotes.append(AnswerSentence(sentence.candidate, start, end, share, row, label))
    return quotes


def _overlaps(sentence: CandidateSentence, chosen: list[int],
              sentences: Sequence[CandidateSentence]) -> bool:
    """True if the sentence is one already chosen, or the antecedent a chosen one will quote."""
    for index in chosen:
        other = sentences[index]
        if other.document.id != sentence.document.id:
            continue
        if other.start == sentence.start or (
                other.previous and other.previous[0] == sentence.start
                and bool(_REFERENCE.match(other.text))):
            return True
    return False


def _slice(document: Document, span: tuple[int, int] | None) -> str:
    return document.text[span[0]:span[1]] if span else ""


def _uniform(asked: set[str]) -> dict[str, float]:
    # Without collection weights (a store without BM25), every question word counts the same.
    return {token: 1.0 for token in asked}

