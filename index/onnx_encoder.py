"""The embedding model exported to ONNX: the same vectors, 3x faster per question, 1.3x per batch.

For one short text PyTorch spends most of its time in Python and dispatch, not arithmetic; for
batches onnxruntime's fused kernels still win. The exported graph, run by onnxruntime (which
chromadb already installs), gives the same vectors: every load is checked against PyTorch on
probe texts, one at a time and as a padded batch, and a model that does not export, or
exports to different vectors, stays on PyTorch.

The export is cached in the data folder, keyed by a fingerprint of the model's weights, so it
happens once per model (a few seconds), not once per process. Beside it, an `ExportRecord`
keyed by the model folder's files keeps the tokenizer and PyTorch's vectors of the probe texts:
a later process opens the export from the record alone, checking it against those vectors, and
never imports PyTorch (about 8 of the 10 seconds a server took to start).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# Bump when the exported graph changes, so caches made by older code are not reused.
EXPORT_VERSION = 1
# Lowest cosine between an ONNX vector and the PyTorch vector of the same probe text.
MIN_AGREEMENT = 0.9999
# The same for the int8 copy that embeds questions: quantizing the weights moves a vector by
# about 0.005 in cosine (0.9946 median over 300 benchmark questions for all-MiniLM-L6-v2).
MIN_QUERY_AGREEMENT = 0.98
PROBES = (
    "Who co-leads the lab?",
    "When did the northern tram line open, and what did it cost?",
    "Ünïcödé, numbers 1,234.5 and a word that is not in any vocabulary: qzxvbnmfrotl.",
    "",
    # Longer than the model reads: truncation must match too.
    " ".join(["The ferry crossing was delayed by fog for most of the morning."] * 60),
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# A model folder of more files than this is not fingerprinted by its files (no record is kept).
MAX_MODEL_FILES = 1000


class ExportFailed(Exception):
    """The model could not be exported, or the export does not reproduce its vectors."""


class OnnxEncoder:
    """Encodes texts with an exported copy of a sentence-transformers model."""

    def __init__(self, session: Any, tokenizer: Any, input_names: tuple[str, ...]) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._input_names = input_names
        self._query_session: Any | None = None

    @property
    def int8_queries(self) -> bool:
        """Whether questions are embedded by the int8 copy (`use_int8_queries`)."""
        return self._query_session is not None

    def use_int8_queries(self, export: Path, expected: np.ndarray) -> None:
        """Embed questions with an int8 copy of `export` (made once beside it), checked
        against PyTorch's vectors of the probe texts; ExportFailed if it cannot be used.

        One question reads every weight of the model's layers once: for all-MiniLM-L6-v2 at
        float32, 6 x 1.77M weights = 43 MB streamed from memory, which the rest of a request
        has usually pushed out of the CPU's caches. The int8 copy reads a quarter of it (5.1
        -> 2.8 ms a question on this 2-core machine, README, Performance), on one thread: a
        second one only added its hand-over (2.6 ms against 2.8-3.3 with two), and leaves a
        core to another request. Passages keep the exact float32 vectors.
        """
        try:
            try:
                session = open_session(int8_copy(export), threads=1)
            except Exception as exc:  # a damaged copy: made again, once
                log.warning("the int8 copy of %s is unreadable (%s); making it again",
                            export.name, exc)
                int8_copy(export).unlink(missing_ok=True)
                session = open_session(int8_copy(export), threads=1)
        except Exception as exc:  # no quantizer, an export it cannot read: questions stay exact
            raise ExportFailed(f"no int8 copy of {export.name}: {type(exc).__name__}: {exc}"
                               ) from exc
        got = np.stack([self._encode(session, [text], 1)[0] for text in PROBES])
        agreement = float(np.min(np.sum(got * expected, axis=1)))
        if agreement < MIN_QUERY_AGREEMENT:
            raise ExportFailed(f"the int8 copy's vectors differ from the model's (lowest "
                               f"cosine {agreement:.4f} < {MIN_QUERY_AGREEMENT})")
        self._query_session = session

    def _try_int8_queries(self, export: Path, expected: np.ndarray) -> None:
        try:
            self.use_int8_queries(export, expected)
        except ExportFailed as exc:
            log.warning("questions are embedded at float32: %s", exc)

    @classmethod
    def for_model(cls, model: SentenceTransformer, cache_dir: Path,
                  location: str | None = None, *, int8_queries: bool = False) -> OnnxEncoder:
        """The cached export of `model` (exported first if missing), checked against it, and
        recorded for the model folder `location` so later processes need no PyTorch; with
        `int8_queries`, questions are embedded by its int8 copy where that copy holds.

        Raises ExportFailed when the model cannot be served this way; the caller keeps
        PyTorch then.
        """
        try:
            # Here, before exporting: without it the export would be wasted (open_session needs it).
            import onnxruntime  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ExportFailed(f"onnxruntime or tokenizers is not installed: {exc}") from exc
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ExportFailed("the model has no fast tokenizer")
        # A private copy: setting truncation on a shared tokenizer is not thread-safe.
        tokenizer = Tokenizer.from_str(backend.to_str())
        tokenizer.no_padding()
        if model.max_seq_length:
            tokenizer.enable_truncation(max_length=int(model.max_seq_length))
        accepted = set(model.tokenizer("probe").keys())
        input_names = tuple(name for name in _INPUTS if name in accepted)
        path = cache_dir / f"model-{_fingerprint(model)}.onnx"
        if not path.exists():
            _export(model, input_names, path)
        try:
            session = open_session(path)
        except Exception as exc:  # a damaged cache file: export again
            log.warning("cached ONNX model %s is unreadable (%s); exporting again", path, exc)
            path.unlink(missing_ok=True)
            _export(model, input_names, path)
            session = open_session(path)
        encoder = cls(session, tokenizer, input_names)
        expected = encoder._check_against(model)
        if location is not None:
            try:
                ExportRecord.write(cache_dir, location, export=path, tokenizer=tokenizer,
                                   input_names=input_names, probe_vectors=expected)
            except OSError as exc:  # the next start loads PyTorch again; nothing else is lost
                log.warning("could not keep the record of the ONNX export: %s", exc)
        if int8_queries:
            encoder._try_int8_queries(path, expected)
        return encoder

    def encode(self, text: str) -> np.ndarray:
        """Unit-length float32 vector for one text."""
        return self.encode_batch([text])[0]

    def encode_query(self, text: str) -> np.ndarray:
        """Unit-length float32 vector for one question (by the int8 copy when in use)."""
        return self._encode(self._query_session or self._session, [text], 1)[0]

    def encode_batch(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (at least one text)."""
        return self._encode(self._session, texts, batch_size)

    def _encode(self, session: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        # Similar lengths together, as sentence-transformers does: less padding to compute.
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        batches = []
        for offset in range(0, len(order), batch_size):
            rows = order[offset:offset + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            columns = {name: np.zeros((len(rows), width), dtype=np.int64) for name in _INPUTS}
            for row, i in enumerate(rows):
                encoding, n = encodings[i], len(encodings[i].ids)
                columns["input_ids"][row, :n] = encoding.ids
                columns["attention_mask"][row, :n] = 1
                columns["token_type_ids"][row, :n] = encoding.type_ids
            feed = {name: columns[name] for name in self._input_names}
            batches.append(session.run(None, feed)[0])
        sorted_vectors = np.concatenate(batches).astype(np.float32, copy=False)
        vectors = np.empty_like(sorted_vectors)
        vectors[order] = sorted_vectors
        return vectors

    def _check_against(self, model: SentenceTransformer) -> np.ndarray:
        expected = np.asarray(model.encode(list(PROBES), normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False),
                              dtype=np.float32)
        self._check_against_vectors(expected)
        return expected

    def _check_against_vectors(self, expected: np.ndarray) -> None:
        one_by_one = np.stack([self.encode(text) for text in PROBES])
        batched = self.encode_batch(PROBES)
        agreement = float(min(np.min(np.sum(got * expected, axis=1))
                              for got in (one_by_one, batched)))
        if agreement < MIN_AGREEMENT:
            raise ExportFailed(f"exported vectors differ from the model's (lowest cosine "
                               f"{agreement:.5f} < {MIN_AGREEMENT})")


class ExportRecord:
    """What opening a checked export takes without PyTorch: the export, its tokenizer, the
    model's dimension and PyTorch's vectors of the probe texts. Kept per model folder, keyed
    by its files' names, sizes and times, so a changed model never finds an old record."""

    def __init__(self, path: Path, fields: dict[str, Any]) -> None:
        self.path = path
        self.export = path.parent / str(fields["export"])
        self.tokenizer = path.parent / str(fields["tokenizer"])
        self.input_names = tuple(str(name) for name in fields["input_names"])
        self.dimension = int(fields["dimension"])
        self.probe_vectors = np.asarray(fields["probe_vectors"], dtype=np.float32)
        if (not set(self.input_names) <= set(_INPUTS) or self.dimension < 1
                or self.probe_vectors.shape != (len(PROBES), self.dimension)):
            raise ValueError(f"malformed export record {path}")

    @staticmethod
    def location_key(location: str) -> str | None:
        """A fingerprint of a local model folder's files; None for a name or a huge folder."""
        folder = Path(location)
        if not folder.is_dir():
            return None
        files = []
        for file in folder.rglob("*"):
            if file.is_file():
                files.append(file)
                if len(files) > MAX_MODEL_FILES:
                    return None
        digest = hashlib.blake2b(digest_size=10)
        digest.update(f"{EXPORT_VERSION}:{folder.resolve()}".encode())
        for file in sorted(files):
            stat = file.stat()
            digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n"
                          .encode())
        return digest.hexdigest()

    @classmethod
    def find(cls, cache_dir: Path, location: str) -> ExportRecord | None:
        """The record of the model folder's checked export, if one was kept and is whole."""
        key = cls.location_key(location)
        if key is None:
            return None
        path = cache_dir / f"record-{key}.json"
        try:
            record = cls(path, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if record.export.is_file() and record.tokenizer.is_file() else None

    @classmethod
    def write(cls, cache_dir: Path, location: str, *, export: Path, tokenizer: Any,
              input_names: tuple[str, ...], probe_vectors: np.ndarray) -> None:
        """Keep the record of a checked export (atomically; a model not in a folder has none)."""
        key = cls.location_key(location)
        if key is None:
            return
        tokenizer_path = cache_dir / f"tokenizer-{export.stem}.json"
        _write_atomically(tokenizer_path, tokenizer.to_str())
        _write_atomically(cache_dir / f"record-{key}.json", json.dumps({
            "export": export.name, "tokenizer": tokenizer_path.name,
            "input_names": list(input_names), "dimension": int(probe_vectors.shape[1]),
            "probe_vectors": probe_vectors.tolist()}))

    def open(self, *, int8_queries: bool = False) -> OnnxEncoder:
        """The export, checked against the recorded vectors; ExportFailed if it is not usable.
        With `int8_queries`, questions are embedded by its int8 copy where that copy holds."""
        try:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.tokenizer))
            session = open_session(self.export)
        except Exception as exc:  # missing packages, a damaged file: the caller exports again
            raise ExportFailed(f"{type(exc).__name__}: {exc}") from exc
        encoder = OnnxEncoder(session, tokenizer, self.input_names)
        encoder._check_against_vectors(self.probe_vectors)
        if int8_queries:
            encoder._try_int8_queries(self.export, self.probe_vectors)
        return encoder


def open_session(path: Path, *, threads: int | None = None) -> Any:
    """An onnxruntime session of an export on the CPU: quiet, its threads sleeping between
    runs; `threads` bounds the threads one run uses (None: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    # By default the intra-op threads spin after each run, waiting for the next: on a server
    # that burned 30 of the 70 ms of CPU a question cost at 100k chunks (2 cores), time the
    # retrieval and the other requests needed (README, "Performance").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def int8_copy(export: Path) -> Path:
    """The copy of an export with its matrix weights quantized to int8, per output channel
    (activations are quantized as each question runs), made once beside it."""
    path = export.with_name(f"{export.stem}-int8.onnx")
    if path.exists():
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.onnx")
    root = logging.getLogger()
    # The quantizer advises, on the root logger, a pre-processing pass. Without one the copy
    # passes its check (cosine 0.995 median to the exact vectors), and the advice would reach
    # every user's terminal.
    advice = _DropMessages("Please consider to run pre-processing")
    root.addFilter(advice)
    try:
        # Per tensor instead of per channel: cosine 0.965 median instead of 0.995.
        quantize_dynamic(export, partial, op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8)
        os.replace(partial, path)
    finally:
        root.removeFilter(advice)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return path


class _DropMessages(logging.Filter):
    """Drops the records whose message starts with a given text."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _fingerprint(model: SentenceTransformer) -> str:
    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"{EXPORT_VERSION}:{model.max_seq_length}:{type(model[0]).__name__}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _export(model: SentenceTransformer, input_names: tuple[str, ...], path: Path) -> None:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - sentence-transformers needs torch
        raise ExportFailed(str(exc)) from exc

    class Pooled(torch.nn.Module):
        """The whole sentence-transformers pipeline (transformer, pooling), normalised."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            features = dict(zip(input_names, inputs, strict=True))
            embedding = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(embedding, dim=-1)

    example = model.tokenizer(["a probe", "a longer probe text"], padding=True,
                              return_tensors="pt")
    # Written beside the target and renamed: a killed export never leaves half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    log.info("exporting the embedding model to ONNX (once): %s", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled().eval(), tuple(example[name] for name in input_names), str(partial),
                input_names=list(input_names), output_names=["embedding"],
                dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in input_names},
                              "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        os.replace(partial, path)
    except Exception as exc:  # any exporter failure means: stay on PyTorch
        raise ExportFailed(f"{type(exc).__name__}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
