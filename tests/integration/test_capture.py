"""Payload capture end to end: a real model and sidecar, a real Kafka broker (KRaft, from Maven Central's
jars), a real HTTP collector reading events with the CloudEvents SDK, and a file sink.

- 10,000 calls at 500/s, ratio 1: every event is in the Kafka topic and at the collector, matched by
  ce-id, or counted as dropped: nothing is lost silently.
- The collector away for 30 s under load: the sidecar's RSS stays bounded, calls keep succeeding,
  and the drops are counted by reason.
- What a consumer of KServe's events reads: the types, the id a call's request and response share,
  the extensions; REST's JSON, a stream message by message, redaction and truncation.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import pathlib
import re
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import grpc
import pytest
import yaml

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.event_sink import EventCollector
from tests.support.kafka import KafkaBroker, available, kafka_broker
from tests.support.openloop import OpenLoop, digits_request, summarize
from tests.support.procs import HOST, Proc, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
KSERVE_EXTENSIONS = ("inferenceservicename", "namespace", "component", "endpoint", "metadata")


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_model()) as proc:
        yield proc


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaBroker]:
    why = available()
    if why:
        pytest.fail(why)  # scripts/test.sh sets Kafka up: a missing broker is a failure, not a skip
    with kafka_broker() as broker:
        yield broker


def write_policy(path: pathlib.Path, capture: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"capture": {"namespace": "ml", "endpoint": "default", **capture}}))
    return str(path)


def metrics(sidecar: Proc) -> dict[str, float]:
    status, body = http_get(sidecar.ports["http"], "/metrics")
    assert status == 200
    found: dict[str, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("ai_sidecar_capture"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def sink_counts(m: dict[str, float], sink: str) -> dict[str, float]:
    def get(name: str) -> float:
        return m.get(f'ai_sidecar_capture_{name}{{sink="{sink}"}}', 0.0)

    dropped = {
        reason: m.get(f'ai_sidecar_capture_dropped_total{{reason="{reason}",sink="{sink}"}}', 0.0)
        for reason in ("queue_full", "retries_exhausted", "rejected", "shutdown")
    }
    return {
        "enqueued": get("enqueued_total"),
        "sent": get("sent_total"),
        "queued": get("queue_events"),
        **{f"dropped_{k}": v for k, v in dropped.items()},
        "dropped": sum(dropped.values()),
    }


def wait_settled(
    sidecar: Proc, sinks: tuple[str, ...], expected: int, timeout: float = 60.0
) -> dict[str, dict[str, float]]:
    """Until every sink has sent or dropped all it was given, and that is `expected` events."""
    deadline = time.monotonic() + timeout
    counts: dict[str, dict[str, float]] = {}
    while time.monotonic() < deadline:
        m = metrics(sidecar)
        counts = {s: sink_counts(m, s) for s in sinks}
        if all(
            c["queued"] == 0 and c["enqueued"] + c["dropped_queue_full"] == expected
            and c["sent"] + c["dropped"] - c["dropped_queue_full"] == c["enqueued"]
            for c in counts.values()
        ):  # fmt: skip
            return counts
        time.sleep(0.25)
    raise AssertionError(f"capture did not settle at {expected} events per sink: {counts}")


async def consume(kafka: KafkaBroker, topic: str, want: int, timeout: float = 60.0) -> list[Any]:
    from aiokafka import AIOKafkaConsumer
    from cloudevents.v1.kafka import KafkaMessage, from_binary

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    events: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(events) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for r in records:
                    message = KafkaMessage(headers=dict(r.headers), key=r.key, value=r.value)
                    events.append(from_binary(message, data_unmarshaller=lambda b: b))
    finally:
        await consumer.stop()
    return events


@pytest.mark.parametrize("dataplane", ["relay", "grpcio"])
async def test_10000_calls_every_event_is_in_kafka_and_at_the_collector_or_counted_dropped(
    model: Proc, kafka: KafkaBroker, tmp_path: pathlib.Path, dataplane: str
) -> None:
    topic = f"inference-10k-{dataplane}"
    with EventCollector() as collector:
        policy = write_policy(
            tmp_path / "policy.yaml",
            {
                "sinks": [
                    {"http": {"url": collector.url}},
                    {"kafka": {"bootstrap_servers": kafka.bootstrap, "topic": topic}},
                ],
                "rules": [{"model": "digits", "ratio": 1.0}],
            },
        )
        sidecar = start_sidecar(
            model.ports["grpc"],
            "--model",
            "digits",
            "--dataplane",
            dataplane,
            "--inference-policy-file",
            policy,
        )
        with running(sidecar):
            load = OpenLoop(
                sidecar.ports["grpc"], 500, count=10_000, max_seconds=40, payload=digits_request(4)
            )
            load.start()
            assert load.done.wait(90), "the load did not finish"
            records = load.stop()
            summary = summarize(records)
            assert summary.sent == 10_000 and summary.failed == 0, summary
            expected = 2 * 10_000  # a request and a response event per call
            counts = wait_settled(sidecar, ("http", "kafka"), expected)
        kafka_events = await consume(kafka, topic, int(counts["kafka"]["sent"]))
        assert collector.errors == []
        http_events = list(collector.events)

    for sink, events in (("http", http_events), ("kafka", kafka_events)):
        c = counts[sink]
        keys = collections.Counter((e["id"], e["type"]) for e in events)
        assert max(keys.values()) == 1, f"{sink}: an event arrived twice"
        # Nothing lost silently: what arrived plus what was counted as dropped is every event.
        assert len(keys) == c["sent"] and len(keys) + c["dropped"] == expected, (sink, c)
    if counts["http"]["dropped"] == 0 and counts["kafka"]["dropped"] == 0:
        ids_http = {e["id"] for e in http_events}
        assert ids_http == {e["id"] for e in kafka_events} and len(ids_http) == 10_000
        by_id = collections.defaultdict(set)
        for e in http_events:
            by_id[e["id"]].add(e["type"])
        assert all(types == {REQUEST, RESPONSE} for types in by_id.values())
    # Read by the CloudEvents SDK as KServe's consumers read them, over both bindings.
    for e in (http_events[0], kafka_events[0]):
        assert e["specversion"] == "1.0" and e["source"].startswith("http://localhost:")
        assert e["type"] in (REQUEST, RESPONSE)
        assert e["inferenceservicename"] == "digits" and e["namespace"] == "ml" and e["endpoint"] == "default"
        assert all(k in e.get_attributes() for k in KSERVE_EXTENSIONS)
        assert e["datacontenttype"].startswith("application/x-protobuf")
    request = next(e for e in kafka_events if e["type"] == REQUEST)
    assert pb.ModelInferRequest.FromString(request.get_data()).model_name == "digits"


def rss_kib(pid: int) -> int:
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match
    return int(match.group(1))


@pytest.mark.parametrize("dataplane", ["relay", "grpcio"])
async def test_a_30_s_sink_outage_keeps_rss_bounded_and_counts_every_drop(
    model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    queue_mib = 8
    collector = EventCollector()  # not started: the sink is down from the first call
    try:
        policy = write_policy(
            tmp_path / "policy.yaml",
            {
                "sinks": [{"http": {"url": collector.url, "timeout": "1s"}}],
                "queue_bytes": f"{queue_mib}MiB",
                "queue_events": 1_000_000,
                "retry": {"max_attempts": 3, "base_backoff": "1s", "max_backoff": "2s"},
                "rules": [{"model": "*", "ratio": 1.0}],
            },
        )
        sidecar = start_sidecar(
            model.ports["grpc"],
            "--model",
            "digits",
            "--dataplane",
            dataplane,
            "--inference-policy-file",
            policy,
        )
        with running(sidecar):
            # 32 images a call: 8 KiB a request, so 30 s at 300/s would hold 74 MB of events.
            rate, seconds = 300, 30
            load = OpenLoop(
                sidecar.ports["grpc"],
                rate,
                count=rate * seconds,
                max_seconds=60,
                payload=digits_request(32),
                timeout=30,
            )
            start_rss = rss_kib(sidecar.pid)
            samples: list[tuple[float, int]] = []
            load.start()
            began = time.monotonic()
            while not load.done.wait(0.5):
                samples.append((time.monotonic() - began, rss_kib(sidecar.pid)))
            records = load.stop()
            summary = summarize(records)
            assert summary.failed == 0, summary  # capture never fails a call
            during = sink_counts(metrics(sidecar), "http")
            assert during["dropped_queue_full"] > 0 and during["sent"] == 0, during

            peak = max(kib for _, kib in samples)
            at_20s = max(kib for t, kib in samples if t <= 20)
            print(f"RSS start {start_rss} KiB, by 20 s {at_20s}, peak {peak}:", [k for _, k in samples[::4]])
            # Bounded: the queue's bytes plus the process's own churn (at most 48 MiB all told), and
            # flat once the queue is full: an unbounded queue grows by 25-30 MB in the last 10 s,
            # the sidecar alone by 2 (5 when other load on the machine makes calls pile up).
            assert peak - start_rss < (queue_mib + 40) * 1024, samples
            assert peak - at_20s < 12 * 1024, samples

            collector.start()  # the sink comes back: what is queued goes
            counts = wait_settled(sidecar, ("http",), 2 * summary.sent)
            assert counts["http"]["sent"] > 0
            received = len(collector.events)
            assert (
                received == counts["http"]["sent"]
                and received + counts["http"]["dropped"] == 2 * summary.sent
            )
    finally:
        collector.close()


@pytest.mark.parametrize("dataplane", ["relay", "grpcio"])
async def test_rest_and_streams_captured_message_by_message_redacted_and_truncated(
    model: Proc, tmp_path: pathlib.Path, dataplane: str
) -> None:
    events_file = tmp_path / "events.jsonl"
    policy = write_policy(
        tmp_path / "policy.yaml",
        {
            "sinks": [{"file": {"path": str(events_file)}}],
            "max_payload_bytes": "2KiB",
            "rules": [{"model": "digits", "ratio": 1.0, "redact": {"metadata": ["x-secret"]}}],
        },
    )
    sidecar = start_sidecar(
        model.ports["grpc"], "--model", "digits", "--dataplane", dataplane, "--inference-policy-file", policy
    )
    with running(sidecar):
        # REST: the caller's ce-id is the event's, as KServe's agent keeps it.
        body = json.dumps(
            {"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
        ).encode()
        headers = {"content-type": "application/json", "ce-id": "rest-call-1", "x-secret": "s3cr3t",
                   "x-client-id": "c1", "authorization": "Bearer t"}  # fmt: skip
        async with aiohttp.ClientSession() as session:
            url = f"http://{HOST}:{sidecar.ports['http']}/v2/models/digits/infer"
            async with session.post(url, data=body, headers=headers) as r:
                assert r.status == 200
                rest_answer = json.loads(await r.read())
            # Triton's binary tensor extension: JSON, then the tensors' bytes, both ways.
            header = json.dumps(
                {"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32",
                             "parameters": {"binary_data_size": 256}}],
                 "outputs": [{"name": "LABEL", "parameters": {"binary_data": True}}]}
            ).encode()  # fmt: skip
            binary_body = header + bytes(256)
            binary_headers = {"ce-id": "rest-binary-1", "inference-header-content-length": str(len(header))}
            async with session.post(url, data=binary_body, headers=binary_headers) as r:
                assert r.status == 200
                binary_answer = await r.read()
                answer_json_length = int(r.headers["inference-header-content-length"])

        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            requests = [pb.ModelInferRequest.FromString(digits_request(1)) for _ in range(3)]
            for i, message in enumerate(requests):
                message.id = f"s{i}"
            answers = [
                a async for a in stub.ModelStreamInfer(iter(requests), metadata=[("ce-id", "stream-1")])
            ]
            assert len(answers) == 3
            big = pb.ModelInferRequest.FromString(digits_request(16))  # 4 KiB: over the 2 KiB limit
            await stub.ModelInfer(big, metadata=[("ce-id", "big-1")])

        deadline = time.monotonic() + 20
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(events) < 12:
            lines = events_file.read_text().splitlines() if events_file.exists() else []
            events = [json.loads(line) for line in lines]
            await asyncio.sleep(0.1)
        truncated = metrics(sidecar)["ai_sidecar_capture_truncated_total"]
    by_id = {(e["id"], e["type"]): e for e in events}
    assert len(events) == 12, [(e["id"], e["type"]) for e in events]

    rest_request, rest_response = by_id["rest-call-1", REQUEST], by_id["rest-call-1", RESPONSE]
    assert rest_request["datacontenttype"] == "application/json" and rest_request["data"] == json.loads(body)
    assert rest_response["data"] == rest_answer
    binary_request, binary_response = by_id["rest-binary-1", REQUEST], by_id["rest-binary-1", RESPONSE]
    pairs = ((binary_request, binary_body, len(header)), (binary_response, binary_answer, answer_json_length))
    for event, raw, length in pairs:
        assert event["datacontenttype"] == "application/octet-stream"
        assert event["jsonheaderlength"] == str(length) and base64.b64decode(event["data_base64"]) == raw
    metadata = json.loads(rest_request["metadata"])
    assert (
        metadata["x-client-id"] == ["c1"] and "x-secret" not in metadata and "authorization" not in metadata
    )

    for n in range(3):
        sent, got = by_id[f"stream-1-{n}", REQUEST], by_id[f"stream-1-{n}", RESPONSE]
        assert sent["sequence"] == got["sequence"] == str(n)
        assert pb.ModelInferRequest.FromString(base64.b64decode(sent["data_base64"])).id == f"s{n}"
        streamed = pb.ModelStreamInferResponse.FromString(base64.b64decode(got["data_base64"]))
        assert streamed.infer_response.id == f"s{n}"

    cut = by_id["big-1", REQUEST]
    assert cut["truncated"] == "true" and cut["payloadbytes"] == str(len(big.SerializeToString()))
    assert len(base64.b64decode(cut["data_base64"])) == 2048
    assert "truncated" not in by_id["big-1", RESPONSE]
    assert truncated == 1
