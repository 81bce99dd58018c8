"""The answering pipeline: follow-up, question, retrieve, rerank, extract, abstain, cite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from langchain_core.language_models import BaseChatModel

from core.documents import Filters
from core.errors import CiteqaError, TooLarge
from core.settings import Settings
from core.text import search_tokens
from index.embedding import Embedder
from index.store import CollectionStore, Store
from qa.abstain import (
    NOT_SUPPORTED,
    FittedSupport,
    SupportModel,
    should_abstain,
    undated_note,
    why_nothing,
)
from qa.answer import Answer, Passage, TimeWindowInfo
from qa.cite import cite, shown_passages
from qa.draft import Answerer, TokenCallback
from qa.extract import ExtractiveAnswerer
from qa.followup import Rewrite, Turn, previous_quotes, standalone_question
from qa.generate import GeneratingAnswerer, GenerationOptions
from qa.question import Question, prepare_question
from qa.rerank import FusionOrder, Reranker
from qa.retrieve import Candidate, FusionWeights, hybrid_search
from qa.timeframe import TimeWindow, without_phrase


@dataclass(frozen=True)
class AnswerOptions:
    """The settings the answering pipeline takes: its view of `Settings`, checked here so a
    pipeline built without settings is checked too."""

    collection: str
    max_question_chars: int
    top_k: int
    candidates: int
    fusion: FusionWeights
    time_boost: float
    answer_sentences: int
    abstain_threshold: float | None = None
    generation: GenerationOptions = field(default_factory=GenerationOptions)

    def __post_init__(self) -> None:
        for name in ("max_question_chars", "top_k", "candidates", "answer_sentences"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.time_boost < 1.0:
            raise ValueError(f"time_boost must be at least 1 (1 turns it off), got "
                             f"{self.time_boost}")
        if self.abstain_threshold is not None and not 0.0 <= self.abstain_threshold <= 1.0:
            raise ValueError(f"abstain_threshold must be within 0..1, got "
                             f"{self.abstain_threshold}")

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerOptions:
        """The options as the settings (`CITEQA_TOP_K`, `CITEQA_WEIGHT_*`...) give them."""
        return cls(collection=settings.collection,
                   max_question_chars=settings.max_question_chars, top_k=settings.top_k,
                   candidates=settings.candidates, fusion=FusionWeights.from_settings(settings),
                   time_boost=settings.time_boost, answer_sentences=settings.answer_sentences,
                   abstain_threshold=settings.abstain_threshold,
                   generation=GenerationOptions.from_settings(settings))

    def collection_for(self, name: str | None) -> str:
        """The collection a command or request names, or else the configured one
        (`CITEQA_COLLECTION`): the one place this rule is written."""
        return name or self.collection


@dataclass(frozen=True)
class Asked:
    """A question ready to answer: checked, made standalone, its collection found."""

    question: str
    rewrite: Rewrite
    prepared: Question
    target: CollectionStore
    history: tuple[Turn, ...] = ()

    @property
    def collection(self) -> str:
        """The name of the collection asked."""
        return self.target.name

    @property
    def rewritten(self) -> str | None:
        """The standalone question searched, when the conversation changed it."""
        return self.prepared.text if self.rewrite.changed else None


class Assistant:
    """Answers questions over a store's collections; built once, used for every question."""

    # How a question's time window acts, as measured in bench/time_sweep.py: it runs from
    # the phrase's first day up to as_of (a report is dated on or after what it reports); when
    # a passage dated inside it leads the (boosted) ranking, passages dated outside it are
    # dropped; the phrase itself ("this week") is still searched for (leaving it out changed
    # nothing).
    window_until_as_of = True
    narrow_to_window = True
    drop_time_phrase = False

    def __init__(
        self,
        *,
        store: Store,
        embedder: Embedder,
        options: AnswerOptions,
        reranker: Reranker | None = None,
        answerer: Answerer | None = None,
        support: SupportModel | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options
        self.reranker = reranker or FusionOrder()
        extractive = answerer or ExtractiveAnswerer(
            embedder=embedder, max_sentences=options.answer_sentences
        )
        # In LLM mode the model writes and the extractive answerer stands in when it cannot.
        self.answerer: Answerer = extractive if chat_model is None else GeneratingAnswerer(
            chat_model=chat_model, fallback=extractive, embedder=embedder,
            options=options.generation)
        self.support = support or FittedSupport()
        self.chat_model = chat_model
        self._embedding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeqa-embed")
        self._retrieving = 0
        self._retrieving_lock = threading.Lock()

    def prepare(self, question: str, *, history: Sequence[Turn] = (),
                collection: str | None = None, as_of: date | None = None) -> Asked:
        """The question checked, made standalone from `history` (earlier turns, oldest
        first) and checked again, its collection found, and its day (`as_of`, None: today)
        and time phrase read: everything that can refuse a question happens here, before any
        answering (or streaming) starts."""
        # An unknown collection is refused now (404), not halfway through an answer; its
        # word rarities weight the question.
        target = self.store.collection(self.options.collection_for(collection))
        # Validate what the user typed before rewriting it.
        typed = prepare_question(question, max_chars=self.options.max_question_chars,
                                 idf=target.idf, as_of=as_of)
        rewrite = self.standalone(question, history, collection=target.name)
        prepared = (typed if rewrite.text == question
                    else self._prepare_rewrite(question, rewrite.text, target, typed.as_of))
        return Asked(question=" ".join(question.split()), rewrite=rewrite, prepared=prepared,
                     target=target, history=tuple(history))

    def ask(
        self,
        question: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
        as_of: date | None = None,
        time_phrases: bool = True,
    ) -> Answer:
        """Answer one question from the collection, citing the exact spans used.

        With `history` (earlier turns, oldest first), a follow-up question is first made
        standalone; the answer reports the rewritten question. In LLM mode, `on_token`
        receives the model's text as it is generated, before the check. The question is asked
        as of `as_of` (None: today, UTC): documents dated after it are not used, and with
        `time_phrases` "this week", "in March"... favour documents dated in that span.
        """
        started = time.perf_counter()
        asked = self.prepare(question, history=history, collection=collection, as_of=as_of)
        return self.answer(asked, top_k=top_k, filters=filters, on_token=on_token,
                           time_phrases=time_phrases, started=started)

    def answer(self, asked: Asked, *, top_k: int | None = None, filters: Filters | None = None,
               on_token: TokenCallback | None = None, time_phrases: bool = True,
               started: float | None = None) -> Answer:
        """Answer a prepared question (see `ask`): retrieve, draft, judge, cite."""
        started = time.perf_counter() if started is None else started
        timings: dict[str, float] = {}
        top_k = top_k or self.options.top_k
        prepared, query_vector, candidates, window = self._retrieve(
            asked.prepared, asked.target, top_k, filters, timings, time_phrases=time_phrases)
        searched = replace(filters or Filters(), as_of=prepared.as_of.isoformat())
        nothing, notes = None, []
        # Counted only when it can matter: nothing found, or a date range given.
        if not candidates or searched.date_from or searched.date_to:
            coverage = asked.target.coverage(searched)
            if not candidates:
                nothing = why_nothing(asked.collection, coverage, searched)
            if coverage.undated_left_out and nothing is None:
                notes.append(undated_note(coverage.undated_left_out))
        with _timed(timings, "answer"):
            draft = self.answerer.answer(prepared, candidates, query_vector,
                                         history=asked.history, on_token=on_token)
        if draft.support is not None:
            # The generating answerer measured its own support, sentence by sentence.
            support, abstained = draft.support, not draft.sentences
        else:
            support = self.support.support(draft)
            threshold = self.options.abstain_threshold
            abstained = should_abstain(draft, support, threshold=self.support.threshold
                                       if threshold is None else threshold)
        abstention = nothing or NOT_SUPPORTED
        text, citations = (abstention.message, []) if abstained else cite(draft)
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=asked.question,
            rewritten_question=asked.rewritten,
            answer=text,
            abstained=abstained,
            abstain_reason=abstention.reason if abstained else None,
            notes=notes,
            support=round(support, 4),
            citations=citations,
            passages=shown_passages(candidates, top_k),
            mode=draft.mode,
            unsupported=list(draft.rejected),
            timings_ms={k: round(v, 2) for k, v in timings.items()},
            as_of=prepared.as_of.isoformat(),
            time_window=TimeWindowInfo(**window.to_dict()) if window else None,
        )

    def _prepare_rewrite(self, question: str, rewritten: str, target: CollectionStore,
                         as_of: date) -> Question:
        """The rewritten question prepared; when only the rewrite is over the length limit,
        the error says the earlier turns made it so (the typed question was checked)."""
        max_chars = self.options.max_question_chars
        try:
            return prepare_question(rewritten, max_chars=max_chars, idf=target.idf,
                                    as_of=as_of)
        except TooLarge as exc:
            if exc.code != "question_too_long":
                raise
            typed = len(" ".join(question.split()))
            raise TooLarge(
                f"the question ({typed:,} characters) became longer than the limit of "
                f"{max_chars:,} characters (CITEQA_MAX_QUESTION_CHARS) when the earlier turns "
                "were added to it; ask it as a standalone question, or shorten it",
                code="question_too_long") from exc

    def standalone(self, question: str, history: Sequence[Turn], *,
                   collection: str | None = None) -> Rewrite:
        """The question made standalone from the conversation (`qa.followup`), with the
        previous answer's article at hand for "the other lab" or "the latter" (looked up only
        when the question has such a reference)."""
        return standalone_question(
            question, history, article=lambda: self.previous_article(history, collection))

    def previous_article(self, history: Sequence[Turn], collection: str | None = None
                         ) -> str | None:
        """The text of the document the previous answer quoted, or None.

        An extractive answer's quotes are exact sentences of a document: the lexical index
        finds the chunks sharing a quote's words, and the first whose document holds the quote
        (whitespace aside) is it. A generated (LLM) answer quotes nothing exactly: None.
        """
        quotes = previous_quotes(history)
        try:
            target = self.store.collection(self.options.collection_for(collection))
            for quote in quotes[:2]:
                wanted = " ".join(quote.split())
                hits = target.lexical_search(search_tokens(quote), 3)
                records = target.chunks([hit.chunk_id for hit in hits])
                for hit in hits:
                    record = records.get(hit.chunk_id)
                    if record is not None and wanted in " ".join(record.document.text.split()):
                        return record.document.text
        except CiteqaError:
            # An unknown collection is reported by the question's own search.
            return None
        return None

    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        top_k: int | None = None,
        filters: Filters | None = None,
        as_of: date | None = None,
        time_phrases: bool = True,
    ) -> list[Passage]:
        """The passages `ask` would answer from, best first: retrieval only, no answer.

        The query is prepared, weighted, embedded, retrieved (hybrid) and reranked exactly as
        a question is, as of `as_of` (None: today, UTC); each passage's offsets are character
        offsets into its document.
        """
        target = self.store.collection(self.options.collection_for(collection))
        prepared = prepare_question(query, max_chars=self.options.max_question_chars,
                                    idf=target.idf, as_of=as_of)
        top_k = top_k or self.options.top_k
        _, _, candidates, _ = self._retrieve(prepared, target, top_k, filters, {},
                                             time_phrases=time_phrases)
        return shown_passages(candidates, top_k)

    def _retrieve(self, prepared: Question, target: CollectionStore, top_k: int,
                  filters: Filters | None, timings: dict[str, float], *,
                  time_phrases: bool = True
                  ) -> tuple[Question, np.ndarray, list[Candidate], TimeWindow | None]:
        """Weight, embed, retrieve and rerank: the part `ask` and `search` share.

        Documents dated after `as_of` are left out; with `time_phrases`, the time window the
        question names (if any) favours the documents dated in it, and is returned.
        """
        as_of = prepared.as_of
        window = prepared.window if time_phrases and self.options.time_boost > 1.0 else None
        if window is not None and self.window_until_as_of:
            window = replace(window, end=as_of)
        searched = prepared
        if window is not None and self.drop_time_phrase:
            searched = prepare_question(without_phrase(prepared.text, window),
                                        max_chars=self.options.max_question_chars)
        filters = replace(filters or Filters(), as_of=as_of.isoformat())
        started = time.perf_counter()

        def embed() -> np.ndarray:
            with _timed(timings, "embed"):
                return self.embedder.embed_query(searched.text)

        with self._retrieving_lock:
            self._retrieving += 1
            alone = self._retrieving == 1
        try:
            # Alone, the question is embedded on another thread (the model runs outside
            # Python's lock) while BM25 and its chunks are read on this one. Beside other
            # questions every core is busy already, and the hand-over and the second catalog
            # read would only add work.
            embedding = self._embedding.submit(embed) if alone else _done(embed())
            candidates = hybrid_search(
                target,
                query_vector=embedding,
                query_tokens=searched.tokens,
                depth=max(self.options.candidates, top_k),
                weights=self.options.fusion,
                filters=filters,
                window=window,
                time_boost=self.options.time_boost,
                narrow=self.narrow_to_window,
            )
        finally:
            with self._retrieving_lock:
                self._retrieving -= 1
        query_vector = embedding.result()
        # What retrieval added to the embedding's time, so that the stages add up.
        timings["retrieve"] = (time.perf_counter() - started) * 1000 - timings["embed"]
        with _timed(timings, "rerank"):
            candidates = self.reranker.rerank(prepared, candidates)
        return prepared, query_vector, candidates, window


def _done(vector: np.ndarray) -> Future[np.ndarray]:
    done: Future[np.ndarray] = Future()
    done.set_result(vector)
    return done


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = (time.perf_counter() - started) * 1000
