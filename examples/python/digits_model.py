"""The digits model as a pure numpy function of its weights file. Knows nothing about gRPC or OIP.

The function is defined in examples/digits/README.md; C++, PHP and Java servers
implement the same one, so this file stays a direct transcription of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FORMAT = "ai-sidecar-digits/1"
FEATURES = 64
CLASSES = 10

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class DigitsModel:
    weights: Floats  # [FEATURES, CLASSES]: row i holds feature i's weight for each class
    bias: Floats  # [CLASSES]
    input_scale: float
    classes: NDArray[np.int64]  # [CLASSES]: the label each column stands for

    @classmethod
    def load(cls, path: str | Path) -> DigitsModel:
        """Read a weights.json; a malformed file raises ValueError naming the file and the field."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"digits weights {path}: cannot read JSON: {error}") from error
        if not isinstance(document, dict):
            raise ValueError(f"digits weights {path}: expected a JSON object at the top")
        if document.get("format") != FORMAT:
            raise ValueError(
                f"digits weights {path}: format is {document.get('format')!r}, expected {FORMAT!r}"
            )
        input_scale = float(_array(path, document, "input_scale", ()))
        if input_scale <= 0.0:
            raise ValueError(f"digits weights {path}: 'input_scale' is {input_scale}, must be > 0")
        return cls(
            weights=_array(path, document, "weights", (FEATURES, CLASSES)),
            bias=_array(path, document, "bias", (CLASSES,)),
            input_scale=input_scale,
            classes=_array(path, document, "classes", (CLASSES,)).astype(np.int64),
        )

    def predict(self, x: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Labels int64[n] and probabilities float32[n, 10] for pixels x[n, 64] valued 0..16."""
        if x.ndim != 2 or x.shape[1] != FEATURES:
            raise ValueError(f"digits model expects pixels of shape [n, {FEATURES}], got {x.shape}")
        # Order of operations as README.md fixes it: scale, then affine, in float64.
        logits = (x.astype(np.float64) / self.input_scale) @ self.weights + self.bias
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        probabilities = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        # argmax returns the first maximum: ties go to the lowest index, as documented.
        labels = self.classes[np.argmax(logits, axis=1)]
        return labels, probabilities


def _array(path: str | Path, document: dict[str, Any], key: str, shape: tuple[int, ...]) -> Floats:
    if key not in document:
        raise ValueError(f"digits weights {path}: missing {key!r}")
    try:
        value = np.asarray(document[key], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"digits weights {path}: {key!r} is not numeric: {error}") from error
    if value.shape != shape:
        raise ValueError(
            f"digits weights {path}: {key!r} has shape {list(value.shape)}, expected {list(shape)}"
        )
    if not np.all(np.isfinite(value)):
        raise ValueError(f"digits weights {path}: {key!r} holds NaN or infinity")
    return value
