"""Unit tests of the digits model: the committed weights, DigitsModel.predict, and train.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "examples" / "digits" / "weights.json"


def _load(name: str, path: Path) -> ModuleType:
    # The examples are scripts, not packages: load them by path.
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


digits_model = _load("digits_model", REPO / "examples" / "python" / "digits_model.py")
train = _load("digits_train", REPO / "examples" / "digits" / "train.py")


@pytest.fixture(scope="module")
def model() -> Any:
    return digits_model.DigitsModel.load(WEIGHTS)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


def test_committed_weights_classify_the_data_set(model: Any, data: Any) -> None:
    x, y = data
    labels, _ = model.predict(x)
    accuracy = float(np.mean(labels == y))
    assert accuracy > 0.95
    recorded = json.loads(WEIGHTS.read_text())["training"]["accuracy"]
    assert accuracy == pytest.approx(recorded, abs=1e-12)


def test_predict_shapes_and_dtypes(model: Any, data: Any) -> None:
    x, _ = data
    labels, probabilities = model.predict(x[:7])
    assert labels.dtype == np.int64 and labels.shape == (7,)
    assert probabilities.dtype == np.float32 and probabilities.shape == (7, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert np.array_equal(labels, np.argmax(probabilities, axis=1))
    one_label, one_probabilities = model.predict(x[:1])
    assert one_label.shape == (1,) and one_probabilities.shape == (1, 10)


def test_predict_refuses_a_wrong_width(model: Any) -> None:
    with pytest.raises(ValueError, match=r"\[n, 64\]"):
        model.predict(np.zeros((2, 63), dtype=np.float32))


def test_ties_go_to_the_lowest_index() -> None:
    flat = digits_model.DigitsModel(
        weights=np.zeros((64, 10)),
        bias=np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
        input_scale=16.0,
        classes=np.arange(10, dtype=np.int64),
    )
    labels, probabilities = flat.predict(np.zeros((1, 64), dtype=np.float32))
    assert labels.tolist() == [3]
    assert probabilities[0, 3] == probabilities[0, 7]


def test_load_names_the_file_and_field(tmp_path: Path) -> None:
    document = json.loads(WEIGHTS.read_text())
    document["bias"] = document["bias"][:9]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"broken\.json: 'bias' has shape \[9\], expected \[10\]"):
        digits_model.DigitsModel.load(broken)
    document["format"] = "something-else/2"
    broken.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="format is 'something-else/2'"):
        digits_model.DigitsModel.load(broken)


def test_training_again_reproduces_the_committed_weights() -> None:
    committed = json.loads(WEIGHTS.read_text())
    fresh = train.train()
    assert fresh["format"] == committed["format"] == digits_model.FORMAT
    assert fresh["input_scale"] == committed["input_scale"]
    assert fresh["classes"] == committed["classes"]
    assert np.allclose(fresh["weights"], committed["weights"], rtol=0, atol=1e-9)
    assert np.allclose(fresh["bias"], committed["bias"], rtol=0, atol=1e-9)
    # The file round-trips: what train.py writes parses back to the same numbers.
    assert json.loads(train.to_json(fresh)) == fresh
