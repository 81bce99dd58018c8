"""The answering pipeline: follow-up, question, retrieve, rerank, extract, abstain, cite."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from index.embedding import Embedder
from index.models import Filters
from index.settings import Settings
from index.store import Store
from qa.abstain import ABSTAIN_MESSAGE, should_abstain
from qa.cite import cite, passages
from qa.extract import Answerer, ExtractiveAnswerer
from qa.followup import Turn, standalone_question
from qa.models import Answer, Citation, Passage
from qa.question import prepare_question
from qa.rerank import FusionOrder, Reranker
from qa.retrieve import FusionWeights, hybrid_search


class Assistant:
    """Answers questions over a store's collections; built once, used for every question."""

    def __init__(
        self,
        *,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        reranker: Reranker | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker or FusionOrder()
        self.fusion = FusionWeights(
            dense=settings.weight_dense, sentences=settings.weight_sentences,
            lexical=settings.weight_lexical, k=settings.rrf_k,
        )
        self.answerer = answerer or ExtractiveAnswerer(
            embedder=embedder, max_sentences=settings.answer_sentences
        )

    def ask(
        self,
        question: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """Answer one question from the collection, citing the exact spans used.

        With `history` (earlier turns, oldest first), a follow-up question is first made
        standalone; the answer reports the rewritten question.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        # Validate what the user typed before rewriting it.
        prepare_question(question, max_chars=self.settings.max_question_chars)
        rewrite = standalone_question(question, history)
        prepared = prepare_question(rewrite.text, max_chars=self.settings.max_question_chars)
        target = self.store.collection(collection or self.settings.collection)
        prepared = prepared.weighted(target.lexical.idf(prepared.tokens))
        top_k = top_k or self.settings.top_k
        with _timed(timings, "embed"):
            query_vector = self.embedder.embed_query(prepared.text)
        with _timed(timings, "retrieve"):
            candidates = hybrid_search(
                target,
                query_vector=query_vector,
                query_tokens=prepared.tokens,
                depth=max(self.settings.candidates, top_k),
                weights=self.fusion,
                filters=filters,
            )
        with _timed(timings, "rerank"):
            candidates = self.reranker.rerank(prepared, candidates)
        with _timed(timings, "answer"):
            draft = self.answerer.answer(prepared, candidates, query_vector)
        abstained = should_abstain(draft, threshold=self.settings.abstain_threshold)
        citations: list[Citation] = []
        if abstained:
            text = ABSTAIN_MESSAGE
        else:
            text, citations = cite(draft.sentences)
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=" ".join(question.split()),
            rewritten_question=prepared.text if rewrite.changed else None,
            answer=text,
            abstained=abstained,
            support=round(draft.support, 4),
            citations=citations,
            passages=passages(candidates, top_k),
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> list[Passage]:
        """The passages `ask` would answer from, best first: retrieval only, no answer.

        The query is prepared, weighted, embedded, retrieved (hybrid) and reranked exactly as
        a question is; each passage's offsets are character offsets into its document.
        """
        prepared = prepare_question(query, max_chars=self.settings.max_question_chars)
        target = self.store.collection(collection or self.settings.collection)
        prepared = prepared.weighted(target.lexical.idf(prepared.tokens))
        top_k = top_k or self.settings.top_k
        query_vector = self.embedder.embed_query(prepared.text)
        candidates = hybrid_search(
            target,
            query_vector=query_vector,
            query_tokens=prepared.tokens,
            depth=max(self.settings.candidates, top_k),
            weights=self.fusion,
            filters=filters,
        )
        candidates = self.reranker.rerank(prepared, candidates)
        return passages(candidates, top_k)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = (time.perf_counter() - started) * 1000
