"""The OIP v2 REST binding of a real sidecar, transcoded to the real digits model over gRPC."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.support.digits import images
from tests.support.procs import HOST, Proc

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(sidecar: Proc):
    base = f"http://{HOST}:{sidecar.ports['http']}"
    async with aiohttp.ClientSession(base) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with http.get(path) as r:
        return r.status, await r.json()


async def post(
    http: aiohttp.ClientSession, path: str, body: Any = None, *, data: bytes | None = None
) -> tuple[int, Any]:
    raw = data if data is not None else json.dumps(body).encode()
    async with http.post(path, data=raw, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


def digits_body(n: int = 2, nested: bool = False) -> dict[str, Any]:
    x = images()[0][:n].astype(float)
    data = x.tolist() if nested else x.ravel().tolist()
    return {
        "id": "42",
        "inputs": [{"name": "INPUT0", "shape": [n, 64], "datatype": "FP32", "data": data}],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/digits/ready",
        "/v2/models/digits/versions/1/ready",
        "/livez",
        "/readyz",
    ],
)
async def test_health_endpoints_answer_200(http, path):
    status, _ = await get(http, path)
    assert status == 200


async def test_server_and_model_metadata(http):
    status, server = await get(http, "/v2")
    assert status == 200 and server["name"] == "digits-python" and "version" in server
    for path in ("/v2/models/digits", "/v2/models/digits/versions/1"):
        status, meta = await get(http, path)
        assert status == 200
        assert meta["name"] == "digits" and meta["platform"] == "numpy"
        assert meta["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 64]}]
        assert {o["name"]: o["shape"] for o in meta["outputs"]} == {
            "LABEL": [-1],
            "PROBABILITIES": [-1, 10],
        }


@pytest.mark.parametrize("nested", [False, True])
async def test_infer_flat_and_nested_data(http, nested):
    status, out = await post(http, "/v2/models/digits/infer", digits_body(3, nested))
    assert status == 200, out
    assert out["model_name"] == "digits" and out["id"] == "42"
    by_name = {o["name"]: o for o in out["outputs"]}
    assert by_name["LABEL"]["datatype"] == "INT64" and by_name["LABEL"]["shape"] == [3]
    assert by_name["LABEL"]["data"] == images()[1][:3].tolist()
    probs = np.array(by_name["PROBABILITIES"]["data"]).reshape(by_name["PROBABILITIES"]["shape"])
    assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


async def test_infer_with_version_and_requested_outputs(http):
    body = digits_body(1) | {"outputs": [{"name": "LABEL"}]}
    status, out = await post(http, "/v2/models/digits/versions/1/infer", body)
    assert status == 200, out
    assert [o["name"] for o in out["outputs"]] == ["LABEL"]


async def test_rest_and_grpc_predictions_agree_on_all_digits(http, stub):
    from tests.support.digits import raw_request

    x, y = images()
    body = {
        "inputs": [
            {
                "name": "INPUT0",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.astype(float).ravel().tolist(),
            }
        ]
    }
    status, out = await post(http, "/v2/models/digits/infer", body)
    assert status == 200
    rest = next(o for o in out["outputs"] if o["name"] == "LABEL")["data"]
    resp = await stub.ModelInfer(raw_request(x))
    grpc_labels = np.frombuffer(
        resp.raw_output_contents[[o.name for o in resp.outputs].index("LABEL")], dtype="<i8"
    )
    assert rest == grpc_labels.tolist()
    assert float(np.mean(np.array(rest) == y)) > 0.95


BAD_INFER = [
    ("malformed JSON", b'{"inputs": [', 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "JSON object"),
    ("missing inputs", b'{"id": "x"}', 400, "inputs"),
    (
        "wrong datatype",
        json.dumps(
            {
                "inputs": [
                    {"name": "INPUT0", "shape": [1, 64], "datatype": "INT64", "data": [0] * 64}
                ]
            }
        ).encode(),
        400,
        "INT64",
    ),
    (
        "unknown datatype",
        json.dumps(
            {
                "inputs": [
                    {"name": "INPUT0", "shape": [1, 64], "datatype": "FLOAT", "data": [0] * 64}
                ]
            }
        ).encode(),
        400,
        "FLOAT",
    ),
    (
        "wrong shape",
        json.dumps(
            {"inputs": [{"name": "INPUT0", "shape": [1, 3], "datatype": "FP32", "data": [0, 0, 0]}]}
        ).encode(),
        400,
        "[1, 3]",
    ),
    (
        "data does not fit shape",
        json.dumps(
            {"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32", "data": [0] * 63}]}
        ).encode(),
        400,
        "63",
    ),
    (
        "wrong input name",
        json.dumps(
            {"inputs": [{"name": "PIXELS", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}
        ).encode(),
        400,
        "PIXELS",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "says"), BAD_INFER, ids=[c[0] for c in BAD_INFER]
)
async def test_bad_infer_bodies_get_4xx_naming_the_problem(http, case, body, status, says):
    got, out = await post(http, "/v2/models/digits/infer", data=body)
    assert got == status, out
    assert says in out["error"], out
    assert (await get(http, "/v2/health/ready"))[0] == 200  # still serving


async def test_unknown_model_is_404(http):
    status, out = await post(http, "/v2/models/nope/infer", digits_body(1))
    assert status == 404 and "nope" in out["error"]
    status, out = await get(http, "/v2/models/nope")
    assert status == 404 and "nope" in out["error"]


async def test_unknown_route_is_404_json(http):
    status, out = await get(http, "/v2/nothing/here")
    assert status == 404 and "error" in out


async def test_body_over_the_limit_is_413_and_the_sidecar_keeps_serving(model):
    from tests.support.procs import running, start_sidecar

    with running(start_sidecar(model.ports["grpc"], "--max-message-bytes", "4096")) as small:
        async with aiohttp.ClientSession(f"http://{HOST}:{small.ports['http']}") as s:
            body = digits_body(40)
            status, out = await post(s, "/v2/models/digits/infer", body)
            assert status == 413 and "too large" in out["error"]
            status, _ = await post(s, "/v2/models/digits/infer", digits_body(1))
            assert status == 200


async def test_a_grpc_timeout_header_sets_the_calls_deadline(http):
    # As grpc-gateway reads it: the header is the REST caller's deadline, here shorter than the
    # model's 5 s; the model call is cancelled when it passes and the caller gets 504.
    body = digits_body(1) | {"parameters": {"sleep_ms": 5000}}
    started = time.monotonic()
    async with http.post(
        "/v2/models/digits/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "grpc-timeout": "300m"},
    ) as r:
        status, answer = r.status, await r.json()
    took = time.monotonic() - started
    assert status == 504, answer
    assert "deadline" in answer["error"].lower()
    assert 0.3 <= took < 2.0
    # A deadline the call meets changes nothing.
    async with http.post(
        "/v2/models/digits/infer",
        data=json.dumps(digits_body(1)).encode(),
        headers={"Content-Type": "application/json", "grpc-timeout": "10S"},
    ) as r:
        assert r.status == 200


@pytest.mark.parametrize("value", ["soon", "500", "123456789m", "5s", "-5S"])
async def test_a_malformed_grpc_timeout_header_is_400_naming_it(http, value):
    async with http.post(
        "/v2/models/digits/infer",
        data=json.dumps(digits_body(1)).encode(),
        headers={"Content-Type": "application/json", "grpc-timeout": value},
    ) as r:
        status, answer = r.status, await r.json()
    assert status == 400
    want = 'an integer of 1 to 8 digits and a unit, H M S m u or n (e.g. "500m")'
    assert answer["error"] == f"grpc-timeout header {value!r}: want {want}"


@pytest.mark.parametrize("depth", [1025, 10**6])
async def test_nesting_beyond_the_limit_is_400_and_the_sidecar_lives(http, depth):
    # 10^6 nested arrays (2 MB, under max_message_bytes) overflowed orjson 3.8's stack: the
    # process died. The JSON parser's nesting limit (1024) makes it a 400.
    nested = io.BytesIO(b"[" * depth + b"]" * depth)  # BytesIO: aiohttp warns of big raw bodies
    async with http.post("/v2/models/digits/infer", data=nested) as r:
        status, out = r.status, await r.json()
    assert status == 400 and "not valid JSON" in out["error"] and "depth" in out["error"]
    status, _ = await post(http, "/v2/models/digits/infer", digits_body(1))
    assert status == 200
