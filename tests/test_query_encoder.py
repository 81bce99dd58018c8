"""Questions embedded by the ONNX export of the model: the same vectors, prepared once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index.embedding import SentenceTransformerEmbedder

QUESTIONS = [
    "Who co-leads the lab?",
    "how many PEOPLE work at the glassworks in 2024??",
    "Qu'a dit la maire à propos du tramway ?",
    "",
    "word " * 400,  # past the model's 256 tokens: both truncate the same way
]


def model_vector(embedder: SentenceTransformerEmbedder, text: str) -> np.ndarray:
    """What the model itself (PyTorch, as ingestion runs it) gives for the text."""
    return embedder.embed_documents([text])[0]


def test_questions_get_the_vectors_the_model_gives(embedder: SentenceTransformerEmbedder
                                                   ) -> None:
    vectors = [embedder.embed_query(q) for q in QUESTIONS]
    assert embedder.query_encoder == "onnx"
    for question, vector in zip(QUESTIONS, vectors, strict=True):
        assert vector.dtype == np.float32 and vector.shape == (embedder.dimension,)
        assert float(vector @ model_vector(embedder, question)) > 0.9999, question


LoadIn = Callable[[Path], SentenceTransformerEmbedder]


@pytest.fixture
def onnx_embedder_in() -> LoadIn:
    """A way to load the model with its ONNX export cached in a given folder."""
    def load(cache: Path) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(query_encoder="onnx", cache_dir=cache)
    return load


def test_the_export_is_made_once_and_reused(onnx_embedder_in: LoadIn, tmp_path: Path) -> None:
    cache = tmp_path / "models"
    first = onnx_embedder_in(cache)
    first.prepare_queries()
    [exported] = cache.glob("*.onnx")
    made = exported.stat().st_mtime_ns

    second = onnx_embedder_in(cache)
    vector = second.embed_query("Who co-leads the lab?")

    assert second.query_encoder == "onnx"
    assert list(cache.iterdir()) == [exported] and exported.stat().st_mtime_ns == made
    assert float(vector @ model_vector(second, "Who co-leads the lab?")) > 0.9999


def test_a_damaged_export_is_made_again(onnx_embedder_in: LoadIn, tmp_path: Path) -> None:
    cache = tmp_path / "models"
    onnx_embedder_in(cache).prepare_queries()
    [exported] = cache.glob("*.onnx")
    exported.write_bytes(b"half a file" * 10)

    embedder = onnx_embedder_in(cache)
    vector = embedder.embed_query("When did the tram line open?")

    assert embedder.query_encoder == "onnx"
    assert exported.stat().st_size > 1_000_000
    assert float(vector @ model_vector(embedder, "When did the tram line open?")) > 0.9999


def test_without_a_usable_export_questions_still_get_answers_from_the_model(
        onnx_embedder_in: LoadIn, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")

    embedder = onnx_embedder_in(blocked)
    with caplog.at_level(logging.WARNING):
        vector = embedder.embed_query("Who co-leads the lab?")

    assert embedder.query_encoder == "torch"
    assert "PyTorch" in caplog.text and "not usable" in caplog.text
    assert np.allclose(vector, model_vector(embedder, "Who co-leads the lab?"))


def test_the_torch_setting_never_exports(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder(query_encoder="torch", cache_dir=tmp_path / "models")
    embedder.embed_query("Who co-leads the lab?")
    assert embedder.query_encoder == "torch"
    assert not (tmp_path / "models").exists()


def test_an_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="'tensorflow'"):
        SentenceTransformerEmbedder(query_encoder="tensorflow")  # type: ignore[arg-type]
