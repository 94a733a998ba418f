"""Triton's own HTTP client (tritonclient.http) against the sidecar's REST ingress, binary and JSON both ways.

tritonclient sends tensors with the binary tensor extension by default (set_data_from_numpy) and
asks for outputs in it. Each of the four combinations of binary/JSON input and output must give,
on all 1,797 digits, exactly the predictions the gRPC path gives, through three setups:
- a gRPC model (the Python digits example) behind the sidecar;
- a REST model that speaks the extension (a first sidecar's REST ingress, which lists
  binary_tensor_data) behind a second sidecar (--model-protocol http): bodies pass through;
- a REST model that does not (the PHP example) behind a sidecar: the sidecar decodes the
  extension and talks JSON to the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, Proc, free_port, http_get, running, start_model, start_sidecar

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is in the test extra")

pytestmark = pytest.mark.integration

BATCH = 256  # 1,797 digits in 8 calls, the last one short


@pytest.fixture(scope="module")
def grpc_model() -> Iterator[Proc]:
    with running(start_model()) as model:
        yield model


@pytest.fixture(scope="module")
def want(grpc_model: Proc) -> tuple[np.ndarray, np.ndarray]:
    """LABEL and PROBABILITIES for every digit, from the model over gRPC directly."""
    x, _ = images()
    labels, probs = [], []
    with grpc.insecure_channel(f"{HOST}:{grpc_model.ports['grpc']}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        for i in range(0, len(x), BATCH):
            resp = stub.ModelInfer(raw_request(x[i : i + BATCH]))
            out = {o.name: k for k, o in enumerate(resp.outputs)}
            labels.append(np.frombuffer(resp.raw_output_contents[out["LABEL"]], "<i8"))
            probs.append(np.frombuffer(resp.raw_output_contents[out["PROBABILITIES"]], "<f4").reshape(-1, 10))
    return np.concatenate(labels), np.concatenate(probs)


@pytest.fixture(scope="module")
def behind_grpc(grpc_model: Proc) -> Iterator[Proc]:
    flags = ("--model", "digits", "--access-log", "on")  # on: shows what a REST model was sent
    with running(start_sidecar(grpc_model.ports["grpc"], *flags)) as proc:
        yield proc


@pytest.fixture(scope="module")
def behind_binary_rest(behind_grpc: Proc) -> Iterator[Proc]:
    # behind_grpc's REST ingress is the REST model here: it speaks the extension.
    status, meta = http_get(behind_grpc.ports["http"], "/v2")
    assert status == 200 and "binary_tensor_data" in json.loads(meta)["extensions"]
    flags = ("--model-protocol", "http", "--model", "digits")
    with running(start_sidecar(behind_grpc.ports["http"], *flags)) as proc:
        yield proc


@pytest.fixture(scope="module")
def behind_php() -> Iterator[Proc]:
    from tests.examples.test_php_example import start_php

    with running(start_php(free_port())) as php:
        status, meta = http_get(php.ports["http"], "/v2")
        assert status == 200 and "binary_tensor_data" not in json.loads(meta).get("extensions", [])
        flags = ("--model-protocol", "http", "--model", "digits")
        with running(start_sidecar(php.ports["http"], *flags)) as proc:
            yield proc


SETUPS = ["behind_grpc", "behind_binary_rest", "behind_php"]
COMBINATIONS = [(i, o) for i in (True, False) for o in (True, False)]


def predict(port: int, binary_in: bool, binary_out: bool) -> tuple[np.ndarray, np.ndarray]:
    x, _ = images()
    labels, probs = [], []
    client = httpclient.InferenceServerClient(f"{HOST}:{port}", network_timeout=30.0)
    try:
        for i in range(0, len(x), BATCH):
            rows = x[i : i + BATCH]
            tensor = httpclient.InferInput("INPUT0", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary_in)
            outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_out)
                       for n in ("LABEL", "PROBABILITIES")]
            result = client.infer("digits", [tensor], outputs=outputs, request_id=f"b{i}")
            assert result.get_response()["id"] == f"b{i}"
            for name in ("LABEL", "PROBABILITIES"):
                carried = "binary_data_size" in (result.get_output(name).get("parameters") or {})
                assert carried is binary_out, f"{name}: want binary {binary_out}: {result.get_output(name)}"
            labels.append(result.as_numpy("LABEL"))
            probs.append(result.as_numpy("PROBABILITIES"))
    finally:
        client.close()
    return np.concatenate(labels), np.concatenate(probs)


COMBINATION_IDS = [f"{'bin' if i else 'json'}-in-{'bin' if o else 'json'}-out" for i, o in COMBINATIONS]


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize(("binary_in", "binary_out"), COMBINATIONS, ids=COMBINATION_IDS)
def test_tritonclient_predicts_every_digit_as_the_grpc_path_does(request, setup, binary_in, binary_out, want):
    proc: Proc = request.getfixturevalue(setup)
    labels, probs = predict(proc.ports["http"], binary_in, binary_out)
    assert labels.dtype == np.int64 and probs.dtype == np.float32
    assert len(labels) == 1797
    np.testing.assert_array_equal(labels, want[0])
    # Float32 values survive JSON text exactly (shortest round-trip repr), so equal, not close.
    np.testing.assert_array_equal(probs, want[1])


@pytest.mark.parametrize("setup", SETUPS)
def test_tritonclient_default_asks_every_output_binary(request, setup, want):
    # No outputs named: tritonclient sets binary_data_output, so both come back binary.
    proc: Proc = request.getfixturevalue(setup)
    x, _ = images()
    client = httpclient.InferenceServerClient(f"{HOST}:{proc.ports['http']}")
    try:
        tensor = httpclient.InferInput("INPUT0", [7, 64], "FP32")
        tensor.set_data_from_numpy(x[:7])
        result = client.infer("digits", [tensor])
        assert {o["name"] for o in result.get_response()["outputs"]} == {"LABEL", "PROBABILITIES"}
        assert all("data" not in o for o in result.get_response()["outputs"])
        np.testing.assert_array_equal(result.as_numpy("LABEL"), want[0][:7])
        assert client.is_server_ready() and client.is_model_ready("digits")
        assert client.get_model_metadata("digits")["name"] == "digits"
    finally:
        client.close()


@pytest.mark.parametrize("setup", SETUPS)
def test_a_binary_size_that_overruns_the_body_is_a_400_naming_the_tensor(request, setup):
    proc: Proc = request.getfixturevalue(setup)
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 256}}]}).encode()
    import urllib.request

    req = urllib.request.Request(
        f"http://{HOST}:{proc.ports['http']}/v2/models/digits/infer",
        data=header + b"\0" * 100,
        headers={"Inference-Header-Content-Length": str(len(header)),
                 "Content-Type": "application/octet-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    body = json.loads(e.value.read())
    assert e.value.code == 400, body
    assert "INPUT0" in body["error"] or "inputs[0]" in body["error"], body


def _rest_infer_sizes(proc: Proc) -> list[int]:
    """request_bytes of every REST ModelInfer in proc's access log."""
    sizes = []
    for line in proc.log().splitlines():
        if line.startswith("{") and '"protocol":"http"' in line and "ModelInfer" in line:
            record = json.loads(line)
            sizes.append(record["request_bytes"])
    return sizes


def test_grpc_callers_reach_a_binary_rest_model_binary(behind_grpc, behind_binary_rest, want):
    # The gRPC ingress over a REST model that speaks the extension: tensors travel raw both ways.
    # Pixels scaled by 1.1 print as 10-18 characters in JSON, 4 bytes in binary: the REST
    # model's access log tells which the second sidecar sent.
    x = images()[0][:100] * np.float32(1.1)
    before = len(_rest_infer_sizes(behind_grpc))
    with grpc.insecure_channel(f"{HOST}:{behind_binary_rest.ports['grpc']}") as ch:
        resp = pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(raw_request(x))
    with grpc.insecure_channel(f"{HOST}:{behind_grpc.ports['grpc']}") as ch:
        direct = pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(raw_request(x))
    assert isinstance(resp, pb.ModelInferResponse)
    shapes = [(o.name, list(o.shape)) for o in direct.outputs]
    assert [(o.name, list(o.shape)) for o in resp.outputs] == shapes
    assert list(resp.raw_output_contents) == list(direct.raw_output_contents)
    # Other tests' lines may still be on their way to the log: look for this call's size.
    binary = range(100 * 64 * 4, 100 * 64 * 4 + 1000)
    deadline = time.monotonic() + 5
    while not any(n in binary for n in _rest_infer_sizes(behind_grpc)[before:]):
        assert time.monotonic() < deadline, _rest_infer_sizes(behind_grpc)[before:]
        time.sleep(0.05)
