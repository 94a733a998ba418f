"""Integration tests of examples/php: the OIP v2 REST binding served by PHP's built-in server, a real process.

Needs php-cli (scripts/setup-polyglot.sh installs it).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import REPO
from tests.support.digits import images
from tests.support.procs import HOST, Proc, free_port, start_listening

# isort: split
import digits_model  # examples/python is on sys.path once tests.support.procs is imported

pytestmark = pytest.mark.integration

SERVE = REPO / "examples" / "php" / "serve.sh"
WEIGHTS = REPO / "examples" / "digits" / "weights.json"
LISTENING = "digits model listening on "
STARTUP_TIMEOUT = 30.0
INFER = "/v2/models/digits/infer"


def start_php(port: int, *flags: str, weights: Path = WEIGHTS) -> Proc:
    """serve.sh on HOST:port, once it printed its listening line."""
    if shutil.which("php") is None:
        pytest.fail("php not found: run scripts/setup-polyglot.sh (Debian package php-cli)")
    args = ["bash", str(SERVE), "--host", HOST, "--port", str(port), "--weights", str(weights), *flags]
    return start_listening(args, name="digits-php", port_key="http", startup_timeout=STARTUP_TIMEOUT)


@pytest.fixture(scope="module")
def server() -> Iterator[Proc]:
    port = free_port()
    proc = start_php(port)
    assert proc.ports["http"] == port
    yield proc
    assert proc.stop() == 0, proc.log()


def call(
    server: Proc, path: str, body: object = None, *, method: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """One HTTP exchange: the status and the JSON body (the text where it is not JSON)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{HOST}:{server.ports['http']}{path}",
        data=data,
        method=method or ("GET" if data is None else "POST"),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
            assert response.headers["Content-Type"] == "application/json"
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


def infer_body(x: np.ndarray[Any, Any], *, nested: bool = False, **extra: object) -> dict[str, object]:
    data = x.tolist() if nested else x.ravel().tolist()
    tensor = {"name": "INPUT0", "shape": list(x.shape), "datatype": "FP32", "data": data}
    return {"inputs": [tensor], **extra}


def outputs(answer: dict[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
    dtypes = {"INT64": np.int64, "FP32": np.float32}
    return {
        t["name"]: np.asarray(t["data"], dtype=dtypes[t["datatype"]]).reshape(t["shape"])
        for t in answer["outputs"]
    }


# --- the model's answers --------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_every_digit_matches_the_python_model(server: Proc, nested: bool) -> None:
    x, y = images()
    labels, probabilities = digits_model.DigitsModel.load(WEIGHTS).predict(x)

    status, answer = call(server, INFER, infer_body(x, nested=nested))

    assert status == 200, answer
    assert (answer["model_name"], answer["model_version"]) == ("digits", "1")
    assert [(t["name"], t["datatype"], t["shape"]) for t in answer["outputs"]] == [
        ("LABEL", "INT64", [1797]),
        ("PROBABILITIES", "FP32", [1797, 10]),
    ]
    got = outputs(answer)
    assert np.array_equal(got["LABEL"], labels)
    assert np.abs(got["PROBABILITIES"] - probabilities).max() <= 1e-5
    # Probabilities are float32 values written in full, as the sidecar's REST binding writes them.
    assert all(float(np.float32(p)) == p for p in answer["outputs"][1]["data"][:100])
    recorded = json.loads(WEIGHTS.read_text())["training"]["accuracy"]
    assert np.mean(got["LABEL"] == y) == pytest.approx(recorded, abs=1e-12)


def test_the_id_is_echoed_and_only_requested_outputs_come_back(server: Proc) -> None:
    x, _ = images()
    body = infer_body(x[:3], id="req-7", outputs=[{"name": "PROBABILITIES"}], parameters={"a": 1})
    status, answer = call(server, "/v2/models/digits/versions/1/infer", body)
    assert status == 200, answer
    assert answer["id"] == "req-7"
    assert [t["name"] for t in answer["outputs"]] == ["PROBABILITIES"]
    assert outputs(answer)["PROBABILITIES"].shape == (3, 10)

    both = [{"name": "LABEL"}, {"name": "PROBABILITIES"}]
    status, answer = call(server, INFER, infer_body(x[:2], outputs=both))
    assert status == 200 and "id" not in answer
    assert [t["name"] for t in answer["outputs"]] == ["LABEL", "PROBABILITIES"]


# --- every other endpoint -------------------------------------------------------------------


def test_health_and_metadata_endpoints_answer(server: Proc) -> None:
    assert call(server, "/v2/health/live") == (200, {"live": True})
    assert call(server, "/v2/health/ready") == (200, {"ready": True})
    assert call(server, "/v2") == (200, {"name": "digits-php", "version": "0.1.0", "extensions": []})
    metadata = {
        "name": "digits",
        "versions": ["1"],
        "platform": "php",
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [
            {"name": "LABEL", "datatype": "INT64", "shape": [-1]},
            {"name": "PROBABILITIES", "datatype": "FP32", "shape": [-1, 10]},
        ],
    }
    for prefix in ("/v2/models/digits", "/v2/models/digits/versions/1"):
        assert call(server, prefix) == (200, metadata)
        assert call(server, prefix + "/ready") == (200, {"name": "digits", "ready": True})


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v2/models/letters", 'model "letters" is not served here; this server serves "digits"'),
        ("GET", "/v2/models/letters/ready", 'model "letters" is not served here'),
        ("POST", "/v2/models/letters/infer", 'model "letters" is not served here'),
        ("GET", "/v2/models/digits/versions/2", 'model "digits" has no version "2"; its only version is "1"'),
        ("POST", "/v2/models/digits/versions/2/infer", 'model "digits" has no version "2"'),
        ("GET", "/v2/repository/index", "GET /v2/repository/index: Not Found"),
    ],
)
def test_unknown_models_versions_and_paths_are_404(
    server: Proc, method: str, path: str, message: str
) -> None:
    body = infer_body(images()[0][:1]) if method == "POST" else None
    status, answer = call(server, path, body, method=method)
    assert status == 404
    assert message in answer["error"]


def test_a_wrong_method_is_405(server: Proc) -> None:
    assert call(server, "/v2/health/live", method="POST", raw=b"{}") == (
        405,
        {"error": "POST /v2/health/live: Method Not Allowed"},
    )
    assert call(server, INFER)[0] == 405


# --- requests it refuses --------------------------------------------------------------------


def _tensor(**changes: object) -> dict[str, object]:
    tensor: dict[str, object] = {
        "name": "INPUT0",
        "shape": [1, 64],
        "datatype": "FP32",
        "data": images()[0][0].tolist(),
    }
    tensor.update(changes)
    return tensor


def _one(**changes: object) -> dict[str, object]:
    return {"inputs": [_tensor(**changes)]}


BAD_REQUESTS: list[tuple[str, object, str]] = [
    ("wrong input name", _one(name="IMAGE"), 'model "digits" has no input "IMAGE"; its input is "INPUT0"'),
    ("wrong datatype", _one(datatype="INT32"),
     'input "INPUT0" has datatype "INT32", model "digits" expects "FP32"'),
    ("wrong shape", _one(shape=[1, 3]),
     'input "INPUT0" has shape [1, 3], model "digits" expects [-1, 64] with at least one row'),
    ("no rows", _one(shape=[0, 64], data=[]),
     'input "INPUT0" has shape [0, 64], model "digits" expects [-1, 64]'),
    ("element count", _one(shape=[2, 64]),
     'input "INPUT0" has shape [2, 64] (128 elements) but 64 values in data'),
    ("ragged nested data", _one(shape=[2, 64], data=[[0.0] * 64, [0.0] * 3]),
     "inputs[0].data[1] must be a list of 64 items to match shape [2, 64], got a list of 3"),
    ("nested rows", _one(shape=[2, 64], data=[[0.0] * 64]),
     "inputs[0].data must be a list of 2 items to match shape [2, 64], got a list of 1"),
    ("not a number", _one(data=["x"] * 64), 'inputs[0].data[0] is not a number, got "x"'),
    ("not finite", _one(data=[1e39] * 64), 'input "INPUT0" holds NaN or infinite values; pixels are 0..16'),
    ("negative shape", _one(shape=[-1, 64]),
     "inputs[0].shape must be a list of non-negative integers, got [-1, 64]"),
    ("missing data", {"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32"}]},
     'inputs[0]: missing required field "data"'),
    ("no inputs", {"inputs": []}, 'request has no inputs; model "digits" expects input "INPUT0"'),
    ("missing inputs", {"id": "x"}, 'missing required field "inputs"'),
    ("repeated input", {"inputs": [_tensor(), _tensor()]}, 'input "INPUT0" appears 2 times'),
    ("unknown output", {**_one(), "outputs": [{"name": "SCORES"}]},
     'model "digits" has no output "SCORES"; its outputs are "LABEL", "PROBABILITIES"'),
    ("repeated output", {**_one(), "outputs": [{"name": "LABEL"}, {"name": "LABEL"}]},
     'output "LABEL" is requested 2 times'),
    ("id not a string", {**_one(), "id": 5}, "id must be a string, got 5"),
    ("not an object", [1, 2], "request body must be a JSON object, got [1, 2]"),
]


@pytest.mark.parametrize(
    ("body", "message"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_a_bad_request_is_400_naming_the_problem(server: Proc, body: object, message: str) -> None:
    status, answer = call(server, INFER, body)
    assert status == 400
    assert message in answer["error"], answer


def test_a_body_that_is_not_json_is_400(server: Proc) -> None:
    status, answer = call(server, INFER, raw=b'{"inputs": [')
    assert status == 400
    assert answer["error"].startswith("request body is not valid JSON: ")


# --- the process ----------------------------------------------------------------------------


def test_sigterm_stops_every_worker_and_exits_zero() -> None:
    proc = start_php(0, "--workers", "3")  # port 0: serve.sh picks a free port itself
    port = proc.ports["http"]
    try:
        assert call(proc, "/v2/health/ready")[0] == 200
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.log()
    finally:
        proc.stop()
    with pytest.raises(OSError):  # no worker is left holding the port
        urllib.request.urlopen(f"http://{HOST}:{port}/v2/health/live", timeout=2)


def test_bad_weights_stop_the_start_with_a_message_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "weights.json"
    broken.write_text(json.dumps({"format": "ai-sidecar-digits/1", "input_scale": 16.0}))
    result = subprocess.run(
        ["bash", str(SERVE), "--port", str(free_port()), "--weights", str(broken)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"digits weights {broken}: missing 'weights'"
