"""Texts embedded by the ONNX export of the model: the same vectors as PyTorch, exported once."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from core.settings import DEFAULT_MODEL
from index.embedding import SentenceTransformerEmbedder, resolve_model_location

ROOT = Path(__file__).resolve().parent.parent

TEXTS = [
    "Who co-leads the lab?",
    "how many PEOPLE work at the glassworks in 2024??",
    "Qu'a dit la maire à propos du tramway ?",
    "",
    "word " * 400,  # past the model's 256 tokens: both truncate the same way
    "The harbour authority said on Tuesday that the new breakwater, begun in 2021, will be "
    "finished a year late because the quarry that supplies its granite flooded in March.",
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    """The same model run by PyTorch: the reference."""
    return SentenceTransformerEmbedder(encoder="torch")


def test_questions_and_passages_get_the_vectors_pytorch_gives(
        embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder
        ) -> None:
    questions = np.stack([embedder.embed_query(text) for text in TEXTS])
    # 120 texts of mixed lengths: several padded batches, each sorted by length and put back.
    passages = embedder.embed_documents(TEXTS * 20)
    reference = torch_embedder.embed_documents(TEXTS)

    assert embedder.encoder == "onnx" and torch_embedder.encoder == "torch"
    assert questions.dtype == passages.dtype == np.float32
    assert passages.shape == (len(TEXTS) * 20, embedder.dimension)
    assert np.min(np.sum(questions * reference, axis=1)) > 0.9999
    assert np.min(np.sum(passages * np.tile(reference, (20, 1)), axis=1)) > 0.9999


LoadIn = Callable[[Path], SentenceTransformerEmbedder]


@pytest.fixture
def onnx_embedder_in() -> LoadIn:
    """A way to load the model with its ONNX export cached in a given folder."""
    def load(cache: Path) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(encoder="onnx", cache_dir=cache)
    return load


def test_the_export_is_made_once_and_reused(onnx_embedder_in: LoadIn, tmp_path: Path,
                                            torch_embedder: SentenceTransformerEmbedder
                                            ) -> None:
    cache = tmp_path / "models"
    onnx_embedder_in(cache).prepare()
    [exported] = cache.glob("*.onnx")
    made = exported.stat().st_mtime_ns

    second = onnx_embedder_in(cache)
    vector = second.embed_query("Who co-leads the lab?")

    assert second.encoder == "onnx"
    assert list(cache.glob("*.onnx")) == [exported] and exported.stat().st_mtime_ns == made
    assert float(vector @ torch_embedder.embed_query("Who co-leads the lab?")) > 0.9999


def test_a_later_process_starts_without_pytorch_and_gives_the_same_vectors(
        onnx_embedder_in: LoadIn, tmp_path: Path,
        torch_embedder: SentenceTransformerEmbedder) -> None:
    cache = tmp_path / "models"
    onnx_embedder_in(cache).prepare()
    # A fresh interpreter, as `citeqa serve` or `citeqa ask` would be: PyTorch takes most of
    # a start's seconds to import, and the recorded export needs none of it.
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from index.embedding import SentenceTransformerEmbedder\n"
        f"embedder = SentenceTransformerEmbedder(encoder='onnx', cache_dir=Path({str(cache)!r}))\n"
        "vector = embedder.embed_query('Who co-leads the lab?')\n"
        "print(json.dumps({'encoder': embedder.encoder, 'dimension': embedder.dimension,\n"
        "                  'torch': 'torch' in sys.modules, 'vector': vector.tolist()}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    started = json.loads(done.stdout.strip().splitlines()[-1])

    assert started["encoder"] == "onnx" and started["dimension"] == torch_embedder.dimension
    assert started["torch"] is False
    reference = torch_embedder.embed_query("Who co-leads the lab?")
    assert float(np.asarray(started["vector"]) @ reference) > 0.9999


def test_a_changed_model_folder_is_not_served_from_an_old_record(
        tmp_path: Path, torch_embedder: SentenceTransformerEmbedder) -> None:
    model = tmp_path / "model"
    shutil.copytree(resolve_model_location(DEFAULT_MODEL), model)
    cache = tmp_path / "models"
    SentenceTransformerEmbedder(str(model), encoder="onnx", cache_dir=cache).prepare()
    [record] = cache.glob("record-*.json")
    # Any file of the folder changing (a new version of the weights, say) changes the key.
    readme = model / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nchanged\n", encoding="utf-8")

    embedder = SentenceTransformerEmbedder(str(model), encoder="onnx", cache_dir=cache)
    vector = embedder.embed_query("Who co-leads the lab?")

    assert embedder.encoder == "onnx"
    assert len(list(cache.glob("record-*.json"))) == 2 and record.exists()
    assert float(vector @ torch_embedder.embed_query("Who co-leads the lab?")) > 0.9999


def test_a_damaged_export_is_made_again(onnx_embedder_in: LoadIn, tmp_path: Path,
                                        torch_embedder: SentenceTransformerEmbedder) -> None:
    cache = tmp_path / "models"
    onnx_embedder_in(cache).prepare()
    [exported] = cache.glob("*.onnx")
    exported.write_bytes(b"half a file" * 10)

    embedder = onnx_embedder_in(cache)
    vectors = embedder.embed_documents(["When did the tram line open?"])

    assert embedder.encoder == "onnx"
    assert exported.stat().st_size > 1_000_000
    reference = torch_embedder.embed_documents(["When did the tram line open?"])
    assert float(vectors[0] @ reference[0]) > 0.9999


def test_without_a_usable_export_texts_are_still_embedded_by_pytorch(
        onnx_embedder_in: LoadIn, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        torch_embedder: SentenceTransformerEmbedder) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")

    embedder = onnx_embedder_in(blocked)
    with caplog.at_level(logging.WARNING):
        vector = embedder.embed_query("Who co-leads the lab?")

    assert embedder.encoder == "torch"
    assert "PyTorch" in caplog.text and "not usable" in caplog.text
    assert np.allclose(vector, torch_embedder.embed_query("Who co-leads the lab?"), atol=1e-5)


def test_the_torch_setting_never_exports(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder(encoder="torch", cache_dir=tmp_path / "models")
    embedder.embed_query("Who co-leads the lab?")
    embedder.embed_documents(["A passage."])
    assert embedder.encoder == "torch"
    assert not (tmp_path / "models").exists()


def test_an_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="'tensorflow'"):
        SentenceTransformerEmbedder(encoder="tensorflow")  # type: ignore[arg-type]


def test_int8_questions_stay_close_to_the_exact_vectors_and_passages_stay_exact(
        tmp_path: Path, torch_embedder: SentenceTransformerEmbedder) -> None:
    cache = tmp_path / "models"
    embedder = SentenceTransformerEmbedder(encoder="onnx", cache_dir=cache,
                                           query_precision="int8")
    questions = np.stack([embedder.embed_query(text) for text in TEXTS])
    passages = embedder.embed_documents(TEXTS)
    reference = torch_embedder.embed_documents(TEXTS)

    assert embedder.query_precision == "int8"
    assert len(list(cache.glob("*-int8.onnx"))) == 1
    agreement = np.sum(questions * reference, axis=1)
    # Close, not equal: the copy really is quantized.
    assert np.min(agreement) > 0.98 and np.min(agreement) < 0.9999
    assert np.allclose(np.linalg.norm(questions, axis=1), 1.0, atol=1e-4)
    assert np.min(np.sum(passages * reference, axis=1)) > 0.9999
    # The exact question is still found first among the passages.
    assert list(np.argmax(questions[:3] @ passages[:3].T, axis=1)) == [0, 1, 2]


def test_a_later_process_finds_the_int8_copy_and_a_damaged_one_is_made_again(
        tmp_path: Path, torch_embedder: SentenceTransformerEmbedder,
        caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "models"
    SentenceTransformerEmbedder(encoder="onnx", cache_dir=cache,
                                query_precision="int8").prepare()
    [copy] = cache.glob("*-int8.onnx")
    copy.write_bytes(b"half a file" * 10)

    # Opened from the export's record, as a later process does.
    embedder = SentenceTransformerEmbedder(encoder="onnx", cache_dir=cache,
                                           query_precision="int8")
    with caplog.at_level(logging.WARNING):
        vector = embedder.embed_query("Who co-leads the lab?")

    assert embedder.query_precision == "int8" and copy.stat().st_size > 1_000_000
    assert "making it again" in caplog.text
    assert float(vector @ torch_embedder.embed_query("Who co-leads the lab?")) > 0.98


def test_float32_questions_are_the_default_and_make_no_int8_copy(
        onnx_embedder_in: LoadIn, tmp_path: Path) -> None:
    embedder = onnx_embedder_in(tmp_path / "models")
    embedder.embed_query("Who co-leads the lab?")
    assert embedder.query_precision == "float32"
    assert not list((tmp_path / "models").glob("*-int8.onnx"))


def test_an_unknown_query_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="'int4'"):
        SentenceTransformerEmbedder(query_precision="int4")  # type: ignore[arg-type]
