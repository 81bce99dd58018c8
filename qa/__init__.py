"""Answering, one file per stage, in the order a question goes through them:

0. `followup.py` — make a follow-up standalone from the conversation (`references.py`
   resolves its references against what `mentions.py` finds in the previous turn)
1. `question.py` — validate the question and classify the kind of answer it wants (with
   `constraints.py`: its names and quantities; `timeframe.py`: its time phrase)
2. `retrieve.py` — chunk vectors, BM25 and the found chunks' best sentences, fused by
   reciprocal rank
3. `rerank.py`   — reorder the fused candidates (a `Reranker` Protocol)
4. `extract.py`  — pick the sentences that answer it, or in LLM mode `generate.py` (the
   model writes) with `check.py` (every sentence checked against its passage; the facts
   and meaning changes in `conflicts.py`, numbers in `quantities.py`); both are
   `Answerer`s returning a `Draft` (`draft.py`)
5. `abstain.py`  — say "the articles do not say" when support is too weak
6. `cite.py`     — the answer text with [n] markers and each marker's exact span

`pipeline.py` runs them; `answer.py` is the answer object. Beside them: `entities.py` and
`linear.py` (recognisers and the fitted linear models the stages use), `evaluation.py` and
`eval_set.py` (scoring a labelled set and reading it), `retriever.py` (the retrieval as a
LangChain retriever).
"""
