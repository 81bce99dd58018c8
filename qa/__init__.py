"""Answering, one file per stage, in the order a question goes through them:

1. `question.py` — validate the question and classify the kind of answer it wants
2. `retrieve.py` — dense (Chroma) + lexical (BM25) search, reciprocal rank fusion
3. `rerank.py`   — reorder the fused candidates (a `Reranker` Protocol)
4. `extract.py`  — pick the sentences that answer it (an `Answerer` Protocol)
5. `abstain.py`  — say "the articles do not say" when support is too weak
6. `cite.py`     — the answer text with [n] markers and each marker's exact span

`pipeline.py` runs them; `models.py` is the answer object.
"""
