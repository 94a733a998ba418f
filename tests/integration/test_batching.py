"""Dynamic batching end to end: the fixed-cost digits model (one call at a time, a floor per call) behind a
sidecar that batches, against the plain model called directly.

- Each caller gets exactly its own rows: on all 1,797 digits, over gRPC and REST, in calls of one to
  three rows, the labels and probabilities match unbatched calls.
- A deadline inside a batch ends only that caller's wait, a caller that cancels takes its rows out,
  and the batch goes on for the others.
- A model error fails only the calls of that batch, with the model's message; what does not fit
  passes through, counted by reason.
- Captured batched calls carry each caller's own request and reply; a SIGTERM drain lets calls
  waiting in a batch finish.

Each runs on the relay (which answers batched calls itself) and on the grpcio plane.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import pathlib
import signal
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest
import yaml

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, Proc, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plain_model() -> Iterator[Proc]:
    with running(start_model()) as proc:
        yield proc


@pytest.fixture(scope="module")
def fixed_cost_model() -> Iterator[Proc]:
    with running(start_model("--fixed-cost-ms", "5")) as proc:
        yield proc


@pytest.fixture(params=["relay", "grpcio"])
def dataplane(request: pytest.FixtureRequest) -> str:
    plane: str = request.param
    return plane


def batching_sidecar(model: Proc, tmp_path: pathlib.Path, dataplane: str, **rule: Any) -> Proc:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"batching": [{"model": "digits", **rule}]}))
    return start_sidecar(
        model.ports["grpc"],
        "--model",
        "digits",
        "--dataplane",
        dataplane,
        "--inference-policy-file",
        str(policy),
    )


def batch_metrics(sidecar: Proc) -> dict[str, float]:
    _, body = http_get(sidecar.ports["http"], "/metrics")
    found = {}
    for line in body.decode().splitlines():
        if line.startswith("ai_sidecar_batch"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def chunks(n: int) -> list[tuple[int, int]]:
    """(start, rows) covering 0..n in calls of 1, 2 and 3 rows in turn."""
    out: list[tuple[int, int]] = []
    start = 0
    for rows in itertools.cycle((1, 2, 3)):
        if start >= n:
            return out
        out.append((start, min(rows, n - start)))
        start += rows
    raise AssertionError("unreachable")


def decode(response: pb.ModelInferResponse) -> tuple[np.ndarray, np.ndarray]:
    by_name = {o.name: i for i, o in enumerate(response.outputs)}
    labels = np.frombuffer(response.raw_output_contents[by_name["LABEL"]], dtype="<i8")
    probs = np.frombuffer(response.raw_output_contents[by_name["PROBABILITIES"]], dtype="<f4").reshape(-1, 10)
    return labels, probs


async def grpc_predictions(port: int, concurrency: int = 64) -> tuple[np.ndarray, np.ndarray]:
    x, _ = images()
    labels = np.full(len(x), -1, dtype=np.int64)
    probs = np.zeros((len(x), 10), dtype=np.float32)
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def one(start: int, rows: int) -> None:
            async with gate:
                response = await stub.ModelInfer(
                    raw_request(x[start : start + rows], id=f"c{start}"), timeout=30
                )
            assert response.id == f"c{start}"
            got_labels, got_probs = decode(response)
            assert got_labels.shape == (rows,)
            labels[start : start + rows] = got_labels
            probs[start : start + rows] = got_probs

        await asyncio.gather(*(one(s, r) for s, r in chunks(len(x))))
    return labels, probs


async def rest_predictions(port: int, concurrency: int = 64) -> tuple[np.ndarray, np.ndarray]:
    x, _ = images()
    labels = np.full(len(x), -1, dtype=np.int64)
    probs = np.zeros((len(x), 10), dtype=np.float32)
    gate = asyncio.Semaphore(concurrency)
    url = f"http://{HOST}:{port}/v2/models/digits/infer"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(start: int, rows: int) -> None:
            body = {
                "id": f"r{start}",
                "inputs": [{"name": "INPUT0", "shape": [rows, 64], "datatype": "FP32",
                            "data": x[start : start + rows].ravel().tolist()}],
            }  # fmt: skip
            async with gate, session.post(url, json=body) as r:
                assert r.status == 200, await r.text()
                answer = json.loads(await r.read())
            assert answer["id"] == f"r{start}"
            outputs = {o["name"]: o for o in answer["outputs"]}
            assert outputs["LABEL"]["shape"] == [rows]
            labels[start : start + rows] = outputs["LABEL"]["data"]
            probs[start : start + rows] = np.asarray(outputs["PROBABILITIES"]["data"]).reshape(rows, 10)

        await asyncio.gather(*(one(s, r) for s, r in chunks(len(x))))
    return labels, probs


async def unbatched(port: int) -> tuple[np.ndarray, np.ndarray]:
    """Each digit in a call of its own, straight to the plain model."""
    x, _ = images()
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> pb.ModelInferResponse:
            async with gate:
                response: pb.ModelInferResponse = await stub.ModelInfer(raw_request(x[i : i + 1]), timeout=30)
                return response

        responses = await asyncio.gather(*(one(i) for i in range(len(x))))
    decoded = [decode(r) for r in responses]
    return np.concatenate([d[0] for d in decoded]), np.concatenate([d[1] for d in decoded])


async def test_every_caller_gets_its_own_rows_on_all_1797_digits_over_grpc_and_rest(
    plain_model: Proc, fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    want_labels, want_probs = await unbatched(plain_model.ports["grpc"])
    with running(
        batching_sidecar(fixed_cost_model, tmp_path, dataplane, max_batch_size=32, max_latency="10ms")
    ) as sidecar:
        for predictions in (grpc_predictions, rest_predictions):
            labels, probs = await predictions(
                sidecar.ports["grpc" if predictions is grpc_predictions else "http"]
            )
            assert (labels == want_labels).all(), (
                f"{predictions.__name__}: {np.flatnonzero(labels != want_labels)}"
            )
            # Rows computed in a batch may differ from a lone row in the last bits of float32.
            np.testing.assert_allclose(probs, want_probs, rtol=0, atol=1e-6)
        m = batch_metrics(sidecar)
    calls = 2 * len(chunks(len(images()[0])))
    batches = m['ai_sidecar_batch_size_count{model="digits"}']
    assert m['ai_sidecar_batch_size_sum{model="digits"}'] == 2 * 1797
    assert batches < calls / 4, f"{batches} batches for {calls} calls: little batching happened"
    assert m['ai_sidecar_batch_queue_delay_seconds_count{model="digits"}'] == calls


async def statistics(port: int) -> pb.ModelStatistics:
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        stats = await pb_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(
            pb.ModelStatisticsRequest(name="digits")
        )
    found: pb.ModelStatistics = stats.model_stats[0]
    return found


async def test_a_deadline_or_a_cancel_inside_a_batch_ends_only_that_callers_wait(
    fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    x, _ = images()
    with running(
        batching_sidecar(fixed_cost_model, tmp_path, dataplane, max_batch_size=32, max_latency="400ms")
    ) as sidecar:
        before = await statistics(fixed_cost_model.ports["grpc"])
        finished: list[str] = []
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            async def call(name: str, rows: int, timeout: float) -> Any:
                try:
                    return await stub.ModelInfer(raw_request(x[:rows], id=name), timeout=timeout)
                except grpc.aio.AioRpcError as e:
                    return e
                finally:
                    finished.append(name)

            async def rest_call(name: str, rows: int, timeout: str) -> int:
                # Nothing but the batcher ends a REST call at its deadline (grpcio ends a gRPC one too).
                body = {"inputs": [{"name": "INPUT0", "shape": [rows, 64], "datatype": "FP32",
                                    "data": x[:rows].ravel().tolist()}]}  # fmt: skip
                url = f"http://{HOST}:{sidecar.ports['http']}/v2/models/digits/infer"
                try:
                    async with (
                        aiohttp.ClientSession() as session,
                        session.post(url, json=body, headers={"grpc-timeout": timeout}) as r,
                    ):
                        return r.status
                finally:
                    finished.append(name)

            waits = asyncio.create_task(call("waits", 1, 10))
            short = asyncio.create_task(call("short", 2, 0.1))
            short_rest = asyncio.create_task(rest_call("short_rest", 3, "100m"))
            leaves = asyncio.create_task(call("leaves", 4, 10))
            await asyncio.sleep(0.05)
            leaves.cancel()
            done = await asyncio.gather(waits, short, short_rest, return_exceptions=True)
            assert leaves.cancelled()
        answer, expired, rest_status = done
        assert rest_status == 504 and finished.index("short_rest") < finished.index("waits")
        assert (
            isinstance(expired, grpc.aio.AioRpcError) and expired.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        )
        assert isinstance(answer, pb.ModelInferResponse) and answer.id == "waits"
        assert decode(answer)[0].shape == (1,)
        # The short deadline ended that call alone, before its batch went.
        assert finished.index("short") < finished.index("waits")
        after = await statistics(fixed_cost_model.ports["grpc"])
        # One execution at the model, holding only the row of the caller that stayed.
        assert after.execution_count - before.execution_count == 1
        assert after.inference_count - before.inference_count == 1


async def test_a_model_error_fails_only_its_batch_and_misfits_pass_through_counted(
    fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    x, _ = images()
    with running(
        batching_sidecar(fixed_cost_model, tmp_path, dataplane, max_batch_size=32, max_latency="50ms")
    ) as sidecar:
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)

            async def call(request: pb.ModelInferRequest) -> Any:
                try:
                    return await stub.ModelInfer(request, timeout=10)
                except grpc.aio.AioRpcError as e:
                    return e

            good = [raw_request(x[i : i + 1], id=f"g{i}") for i in range(3)]
            wrong_version = [raw_request(x[i : i + 1], model_version="7") for i in range(3)]
            results = await asyncio.gather(*(call(r) for r in good + wrong_version))
            assert all(isinstance(r, pb.ModelInferResponse) for r in results[:3])
            for r in results[3:]:
                assert isinstance(r, grpc.aio.AioRpcError) and r.code() is grpc.StatusCode.NOT_FOUND
                assert r.details() == 'model "digits" has no version "7"; its only version is "1"'

            classification = raw_request(x[:1])
            classification.outputs.add(name="LABEL").parameters["classification"].int64_param = 3
            text = pb.ModelInferRequest(
                model_name="digits",
                inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="BYTES", shape=[1])],
                raw_input_contents=[b"\x01\x00\x00\x00a"],
            )
            too_many = raw_request(np.tile(x[:1], (33, 1)))
            # 18 KiB: more than the relay holds whole to batch (batched.HELD_REQUEST), so it relays it.
            too_long = raw_request(np.tile(x[:1], (70, 1)))
            for request in (classification, text, too_many):
                await call(request)  # the model answers as it would without the sidecar
            assert decode(await call(too_long))[0].shape == (70,)
        m = batch_metrics(sidecar)
    held = {"relay": {"too_large": 1, "not_batchable": 1}, "grpcio": {"too_large": 2}}[dataplane]
    for reason, count in {"classification": 1, "bytes": 1, **held}.items():
        assert m[f'ai_sidecar_batch_passthrough_total{{model="digits",reason="{reason}"}}'] == count, m
    assert m['ai_sidecar_batch_size_count{model="digits"}'] == 2  # the good batch and the wrong version's


async def test_a_lone_call_waits_max_latency_then_goes(
    fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    x, _ = images()
    with running(
        batching_sidecar(fixed_cost_model, tmp_path, dataplane, max_batch_size=32, max_latency="200ms")
    ) as sidecar:
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            started = time.monotonic()
            await stub.ModelInfer(raw_request(x[:1]), timeout=10)
            assert time.monotonic() - started >= 0.2  # a lower bound: it waited for company
        m = batch_metrics(sidecar)
    assert m['ai_sidecar_batch_flushes_total{cause="latency",model="digits"}'] == 1


async def test_batched_calls_are_captured_with_their_own_request_and_rows(
    fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    x, _ = images()
    events_file = tmp_path / "events.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "batching": [{"model": "digits", "max_batch_size": 32, "max_latency": "100ms"}],
                "capture": {"sinks": [{"file": {"path": str(events_file)}}], "rules": [{"model": "*"}]},
            }
        )
    )
    sidecar = start_sidecar(
        fixed_cost_model.ports["grpc"], "--model", "digits", "--dataplane", dataplane,
        "--inference-policy-file", str(policy),
    )  # fmt: skip
    with running(sidecar):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            requests = [raw_request(x[i : i + 2], id=f"b{i}") for i in range(4)]
            calls = (stub.ModelInfer(r, metadata=[("ce-id", r.id)], timeout=10) for r in requests)
            answers = await asyncio.gather(*calls)
        deadline = time.monotonic() + 10
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(events) < 8:
            lines = events_file.read_text().splitlines() if events_file.exists() else []
            events = [json.loads(line) for line in lines]
            await asyncio.sleep(0.05)
        m = batch_metrics(sidecar)
    assert m['ai_sidecar_batch_size_count{model="digits"}'] == 1  # the four calls went as one batch
    by_id = {(e["id"], e["type"]): e for e in events}
    assert len(events) == 8, sorted(by_id)
    for i, answer in enumerate(answers):
        sent = pb.ModelInferRequest.FromString(
            base64.b64decode(by_id[f"b{i}", "org.kubeflow.serving.inference.request"]["data_base64"])
        )
        got = pb.ModelInferResponse.FromString(
            base64.b64decode(by_id[f"b{i}", "org.kubeflow.serving.inference.response"]["data_base64"])
        )
        # Each caller's own request, and its own two rows of the batch's reply, as it got them.
        assert sent.id == f"b{i}" and sent.inputs[0].shape == [2, 64]
        assert got == answer and decode(got)[0].shape == (2,)


async def test_sigterm_lets_calls_waiting_in_a_batch_finish_then_exits_zero(
    fixed_cost_model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    x, _ = images()
    sidecar = batching_sidecar(fixed_cost_model, tmp_path, dataplane, max_batch_size=32, max_latency="1s")
    with running(sidecar):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            calls = [
                asyncio.ensure_future(stub.ModelInfer(raw_request(x[i : i + 1], id=f"d{i}"), timeout=20))
                for i in range(4)
            ]
            await asyncio.sleep(0.3)  # all four wait in the batch, which goes at 1 s
            sidecar.signal(signal.SIGTERM)
            answers = await asyncio.gather(*calls)
        assert [a.id for a in answers] == [f"d{i}" for i in range(4)]
        assert await asyncio.to_thread(sidecar.wait, 15) == 0
        assert "Traceback" not in sidecar.log()
