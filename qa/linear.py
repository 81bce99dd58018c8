"""Linear models over named features, fitted offline and shipped as small JSON files.

Answer selection and support are linear in a dozen features each; the weights are fitted by
`make train` (bench/train_answerer.py) on the tuning halves of the dev sets and stored in
`qa/fitted/` with the data and figures they came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FITTED = Path(__file__).resolve().parent / "fitted"


@dataclass(frozen=True)
class LinearModel:
    """`bias + weights · (features - mean) / scale`, over features named in a fixed order."""

    features: tuple[str, ...]
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    bias: float = 0.0
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.weights), len(self.mean), len(self.scale)}
        if len(sizes) != 1:
            raise ValueError(
                f"a linear model needs as many weights, means and scales as features; got "
                f"{len(self.features)} features, {len(self.weights)} weights, {len(self.mean)} "
                f"means and {len(self.scale)} scales")
        if np.any(np.asarray(self.scale) <= 0):
            raise ValueError(f"feature scales must be positive, got {list(self.scale)}")

    @classmethod
    def load(cls, name: str, folder: Path = FITTED) -> LinearModel:
        """The model stored as `<folder>/<name>.json`."""
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        return cls(tuple(data["features"]), np.asarray(data["weights"], dtype=np.float64),
                   np.asarray(data["mean"], dtype=np.float64),
                   np.asarray(data["scale"], dtype=np.float64), float(data["bias"]),
                   data.get("meta", {}))

    def save(self, name: str, folder: Path = FITTED) -> Path:
        """Write the model as `<folder>/<name>.json`; returns the path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        data = {"features": list(self.features), "weights": _rounded(self.weights),
                "mean": _rounded(self.mean), "scale": _rounded(self.scale),
                "bias": round(self.bias, 6), "meta": dict(self.meta)}
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return path

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The rows' features in this model's order, one row per mapping."""
        return np.array([[row[name] for name in self.features] for row in rows],
                        dtype=np.float64).reshape(len(rows), len(self.features))

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """The linear score of each row of a feature matrix."""
        return self.bias + ((rows - self.mean) / self.scale) @ self.weights

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """The logistic probability of each row (for models fitted as logistic regressions)."""
        return 1.0 / (1.0 + np.exp(-self.scores(rows)))


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]
