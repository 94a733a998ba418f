"""Trains the digits model and writes weights.json. Knows nothing about serving, gRPC or OIP.

The model is multinomial logistic regression on scikit-learn's bundled 8x8 digits
(1,797 images, pixels 0..16; no download). It is fitted here with plain numpy
(full-batch Nesterov gradient descent from zero weights, a fixed number of steps)
rather than an sklearn solver, so the result depends on no solver's defaults and
every run on the same numpy gives the same weights. scikit-learn is used only to
load the data set.

    python examples/digits/train.py [--out PATH]

The file format is described in README.md beside this script.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, unused-ignore]

FORMAT = "ai-sidecar-digits/1"
INPUT_SCALE = 16.0  # load_digits pixels are 0..16; the model sees 0..1
CLASSES = 10
FEATURES = 64
SEED = 0  # only shuffles the holdout split; the fit itself starts from zeros
HOLDOUT_FRACTION = 0.25
L2 = 1e-4  # on the weights, not the bias
ITERATIONS = 1000

DEFAULT_OUT = Path(__file__).resolve().parent / "weights.json"

Floats = NDArray[np.float64]
Labels = NDArray[np.int64]


def fit(x: Floats, y: Labels, *, l2: float, iterations: int) -> tuple[Floats, Floats]:
    """Minimise mean cross-entropy + l2/2 * |W|^2; returns W [features, classes] and b [classes]."""
    samples = x.shape[0]
    onehot = np.eye(CLASSES)[y]
    # A column of ones carries the bias, so one update moves W and b together.
    xb = np.hstack([x, np.ones((samples, 1))])
    # Step 1/L with L bounding the gradient's Lipschitz constant: the softmax Hessian is
    # at most 1/2, and |X|_F^2 >= |X|_2^2 avoids an SVD whose last bits vary by LAPACK.
    lipschitz = 0.5 * float(np.sum(xb * xb)) / samples + l2
    step = 1.0 / lipschitz
    theta = np.zeros((x.shape[1] + 1, CLASSES))
    lookahead = theta.copy()
    t = 1.0
    for _ in range(iterations):
        logits = xb @ lookahead
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        gradient = xb.T @ (p - onehot) / samples
        gradient[:-1] += l2 * lookahead[:-1]
        updated = lookahead - step * gradient
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        lookahead = updated + ((t - 1.0) / t_next) * (updated - theta)
        theta, t = updated, t_next
    return theta[:-1].copy(), theta[-1].copy()


def predict_labels(x: Floats, weights: Floats, bias: Floats) -> Labels:
    """The serving function's label, as README.md defines it (x already divided by input_scale)."""
    labels: Labels = np.argmax(x @ weights + bias, axis=1).astype(np.int64)
    return labels


def train(seed: int = SEED) -> dict[str, Any]:
    """Fit on the whole data set and return the weights.json document."""
    # One BLAS thread: a threaded matmul's result depends on the thread count in the last
    # bits, and on a busy machine its threads contend; these matrices are tiny anyway.
    with threadpool_limits(limits=1):
        return _train(seed)


def _train(seed: int) -> dict[str, Any]:
    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.float64) / INPUT_SCALE
    y = np.asarray(digits.target, dtype=np.int64)

    # The holdout figure comes from a separate fit on 75%, so it says how well the
    # recipe generalises; the published weights are then fitted on every image.
    order = np.random.default_rng(seed).permutation(len(y))
    held = order[: round(HOLDOUT_FRACTION * len(y))]
    kept = order[len(held) :]
    w, b = fit(x[kept], y[kept], l2=L2, iterations=ITERATIONS)
    holdout_accuracy = float(np.mean(predict_labels(x[held], w, b) == y[held]))

    weights, bias = fit(x, y, l2=L2, iterations=ITERATIONS)
    accuracy = float(np.mean(predict_labels(x, weights, bias) == y))
    return {
        "format": FORMAT,
        "input_scale": INPUT_SCALE,
        "classes": list(range(CLASSES)),
        "weights": weights.tolist(),
        "bias": bias.tolist(),
        "training": {
            "dataset": "sklearn.datasets.load_digits",
            "samples": len(y),
            "method": "multinomial logistic regression, full-batch Nesterov gradient descent",
            "l2": L2,
            "iterations": ITERATIONS,
            "seed": seed,
            "accuracy": accuracy,
            "holdout_fraction": HOLDOUT_FRACTION,
            "holdout_accuracy": holdout_accuracy,
        },
    }


def to_json(document: dict[str, Any]) -> str:
    """Indented JSON with each innermost list on one line: one weights row per line."""
    text = json.dumps(document, indent=2)
    # Innermost lists hold only numbers (no brackets or braces inside), so they can be
    # re-dumped compactly; json's float repr round-trips float64 exactly.
    return re.sub(r"\[[^\[\]{}]*\]", lambda m: json.dumps(json.loads(m.group(0))), text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the digits model and write weights.json.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the weights")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the holdout split")
    args = parser.parse_args()
    document = train(args.seed)
    args.out.write_text(to_json(document), encoding="utf-8")
    training = document["training"]
    print(
        f"training accuracy {training['accuracy']:.4f} on all {training['samples']} images; "
        f"holdout accuracy {training['holdout_accuracy']:.4f}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
