"""Payload capture's pure parts: settings, KServe's event format, redaction, the bounded queue, the delivery
loop's retries and drops, and the filter's sampling. Fake clocks and sleeps; nothing sleeps for real."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.parse
from typing import Any

import pytest

from inference import grpc_service_pb2 as pb
from sidecar.capture import events as ev
from sidecar.capture import queue as q
from sidecar.capture.dispatch import Delivery, Dispatcher
from sidecar.capture.policy import ALWAYS_REDACTED, CaptureSettings, EventIdentity, Redaction, read_capture
from sidecar.capture.redact import payload
from sidecar.config_section import Section
from sidecar.core.call import Call, Outcome
from sidecar.core.errors import ConfigError
from sidecar.core.messages import JSON, PROTOBUF
from sidecar.filters.capture import CaptureFilter
from sidecar.oip import contract

IDENTITY = EventIdentity("http://localhost:8080/", "digits", "ml", "default", "predictor")
REQ_TYPE = ev.protobuf_type("inference.ModelInferRequest")


def settings(doc: dict[str, Any]) -> CaptureSettings:
    return read_capture(Section(doc, "capture"), app_name="digits", http_port=8080)


SINK = [{"file": {"path": "/tmp/x"}}]


# ---- settings


def test_settings_read_rules_sinks_and_defaults():
    s = settings(
        {
            "namespace": "ml",
            "sinks": [
                {"http": {"url": "http://c/"}},
                {"kafka": {"bootstrap_servers": "a:1,b:2", "topic": "t", "acks": 1}},
            ],
            "rules": [{"model": "digits", "methods": ["ModelInfer"], "ratio": 0.5, "mode": "request",
                       "redact": {"inputs": ["SSN"], "metadata": ["X-Email"]}}],
        }
    )  # fmt: skip
    assert s.identity.inference_service == "digits" and s.identity.source == "http://localhost:8080/"
    assert [k.name for k in s.sinks] == ["http", "kafka"]
    assert s.sinks[1].bootstrap_servers == ("a:1", "b:2") and s.sinks[1].acks == "1"  # type: ignore[union-attr]
    (rule,) = s.rules
    assert rule.methods == {contract.MODEL_INFER} and rule.requests and not rule.responses
    assert rule.redaction.inputs == {"SSN"} and rule.redaction.metadata == ALWAYS_REDACTED | {"x-email"}
    assert s.rules_for(contract.MODEL_STREAM_INFER) == ()


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"rules": [{"model": "m"}]}, "no sinks"),
        (
            {"sinks": SINK, "rules": [{"model": "m", "ratio": 2}]},
            "capture.rules[0].ratio: 2 is not within 0..1",
        ),
        ({"sinks": SINK, "rules": [{"model": "m", "mode": "both"}]}, "capture.rules[0].mode"),
        ({"sinks": SINK, "rules": [{"model": "m", "methods": ["Infer"]}]}, "'Infer' is not an OIP method"),
        ({"sinks": SINK, "rules": [{"modle": "m"}]}, "capture.rules[0].model: required"),
        ({"sinks": [{"http": {}}], "rules": [{"model": "m"}]}, "capture.sinks[0].http.url: required"),
        ({"sinks": [{"smtp": {}}]}, "a sink is one of http, kafka, file"),
        ({"sinks": SINK, "queue_bytes": "1KiB", "max_payload_bytes": "2KiB"}, "one event must fit"),
        ({"sinks": SINK, "retries": 3}, "unknown key 'retries'"),
    ],
)
def test_bad_settings_name_the_key(doc, message):
    with pytest.raises(ConfigError) as e:
        settings(doc)
    assert message in str(e.value)


# ---- events


def captured(
    data=b"\x0a\x06digits", request=True, seq=-1, metadata=None, content_type=REQ_TYPE, **kw
) -> ev.Captured:
    return ev.Captured(
        ev.CallIds("", 42), request, data, kw.pop("offset", 0), content_type, 1_700_000_000.25,
        metadata or [], kw.pop("redaction", Redaction()), seq, kw.pop("size", len(data)),
    )  # fmt: skip


def test_events_carry_kserves_attributes_and_share_the_calls_id():
    md = [("x-client-id", "c1"), ("authorization", "Bearer secret"), ("trace-bin", b"\x01\x02")]
    request = ev.build(captured(metadata=md), IDENTITY, "p-", b"body")
    response = ev.build(captured(request=False, metadata=md), IDENTITY, "p-", b"answer")
    a = request.attributes
    assert a["type"] == "org.kubeflow.serving.inference.request"
    assert response.attributes["type"] == "org.kubeflow.serving.inference.response"
    assert a["id"] == response.attributes["id"] == "p-00000000002a"
    assert a["specversion"] == "1.0" and a["source"] == "http://localhost:8080/"
    assert a["time"] == "2023-11-14T22:13:20.250000Z"
    assert (a["inferenceservicename"], a["namespace"], a["endpoint"], a["component"]) == (
        "digits", "ml", "default", "predictor",
    )  # fmt: skip
    assert json.loads(a["metadata"]) == {"x-client-id": ["c1"], "trace-bin": ["AQI="]}
    assert "sequence" not in a and "truncated" not in a


def test_a_callers_ce_id_is_kept_and_stream_messages_get_their_own():
    c = captured(seq=3)
    c.call = ev.CallIds("caller-id", 1)
    e = ev.build(c, IDENTITY, "p-", b"")
    assert e.attributes["id"] == "caller-id-3" and e.attributes["sequence"] == "3"


def test_http_binary_mode_sends_values_as_kserve_does_and_encodes_only_what_a_header_cannot_carry():
    e = ev.build(captured(metadata=[("x-note", 'a "b" 100% é')]), IDENTITY, "p-", b"x")
    headers = ev.http_headers(e)
    assert headers["content-type"] == REQ_TYPE
    value = headers["ce-metadata"]  # JSON, ASCII-escaped: a header carries it as it is
    assert value.isascii() and json.loads(value) == {"x-note": ['a "b" 100% é']}
    odd = ev.CloudEvent({"source": "urn:é x"}, REQ_TYPE, b"")
    assert ev.http_headers(odd)["ce-source"] == "urn:%C3%A9%20x"
    assert urllib.parse.unquote(ev.http_headers(odd)["ce-source"]) == "urn:é x"


def test_kafka_binary_mode_and_structured_mode():
    e = ev.build(captured(), IDENTITY, "p-", b"\x00\x01")
    headers = dict(ev.kafka_headers(e))
    assert headers["ce_type"] == ev.REQUEST_TYPE.encode() and headers["content-type"] == REQ_TYPE.encode()
    doc = ev.structured(e)
    assert doc["data_base64"] == "AAE=" and doc["datacontenttype"] == REQ_TYPE
    j = ev.structured(ev.build(captured(content_type=ev.JSON), IDENTITY, "p-", b'{"a":1}'))
    assert j["data"] == {"a": 1}


def test_a_truncated_payload_is_flagged_with_its_size():
    e = ev.build(captured(data=b"abc", size=10), IDENTITY, "p-", b"abc")
    assert e.attributes["truncated"] == "true" and e.attributes["payloadbytes"] == "10"


# ---- redaction


def _infer_request() -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="m",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="KEEP", datatype="FP32", shape=[1]),
            pb.ModelInferRequest.InferInputTensor(name="SSN", datatype="FP32", shape=[1]),
        ],
        raw_input_contents=[b"kkkk", b"ssss"],
    )


def test_redaction_leaves_out_named_tensors_and_their_raw_contents():
    data = b"\0\0\0\0\0" + _infer_request().SerializeToString()
    c = captured(data=data, offset=5, redaction=Redaction(inputs=frozenset({"SSN"})), size=len(data) - 5)
    got = pb.ModelInferRequest.FromString(payload(c))
    assert [t.name for t in got.inputs] == ["KEEP"] and list(got.raw_input_contents) == [b"kkkk"]


def test_without_tensor_redaction_the_bytes_go_as_they_came():
    data = _infer_request().SerializeToString()
    assert payload(captured(data=data)) is data


def test_json_redaction_and_what_cannot_be_checked_goes_without_a_body():
    body = json.dumps({"inputs": [{"name": "SSN", "data": [1]}, {"name": "x", "data": [2]}]}).encode()
    r = Redaction(inputs=frozenset({"SSN"}))
    got = json.loads(payload(captured(data=body, content_type=ev.JSON, redaction=r)))
    assert [t["name"] for t in got["inputs"]] == ["x"]
    assert payload(captured(data=body[:10], content_type=ev.JSON, redaction=r, size=len(body))) == b""
    assert payload(captured(data=b"not json", content_type=ev.JSON, redaction=r)) == b""


# ---- the queue


def test_a_full_queue_drops_and_counts_by_events_and_by_bytes():
    sq = q.SinkQueue("t", max_events=2, max_bytes=2 * q.RECORD_OVERHEAD + 10)
    for data in (b"aaaa", b"bbbb", b"c"):
        sq.put(captured(data=data))
    assert len(sq) == 2 and sq.stats.dropped[q.QUEUE_FULL] == 1
    sq.take_now(2)
    sq.put(captured(data=b"x" * (q.RECORD_OVERHEAD + 11)))
    assert sq.stats.dropped[q.QUEUE_FULL] == 2 and sq.bytes == 0


# ---- the delivery loop


class FakeSink:
    name = "fake"

    def __init__(self, script: list[Any]) -> None:
        self.script = script  # per send: "ok", "fail", "raise", or a Delivery
        self.sent: list[list[str]] = []

    async def start(self) -> None:
        pass

    async def send(self, events):
        step = self.script.pop(0) if self.script else "ok"
        self.sent.append([e.attributes["id"] for e in events])
        if step == "raise":
            raise OSError("connection refused")
        if step == "fail":
            return Delivery(retry=list(range(len(events))))
        if isinstance(step, Delivery):
            return step
        return Delivery()

    async def close(self) -> None:
        pass


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def dispatcher(sink, **kw) -> tuple[Dispatcher, Sleeps]:
    s = settings(
        {"sinks": SINK, "retry": {"max_attempts": 3, "base_backoff": "100ms", "max_backoff": "150ms"}}
    )
    sleeps = Sleeps()
    sq = q.SinkQueue("fake", max_events=100, max_bytes=10_000)
    return Dispatcher(sq, sink, s, id_prefix="p-", sleep=sleeps, rng=lambda: 1.0, **kw), sleeps


async def test_failed_sends_are_retried_with_capped_backoff_then_dropped_and_counted():
    sink = FakeSink(["raise", "fail", "fail"])
    d, sleeps = dispatcher(sink)
    await d.deliver([captured(), captured()])
    assert len(sink.sent) == 3
    assert sleeps.slept == [0.1, 0.15]  # base, then 2 x base capped at max_backoff (rng at its top)
    stats = d.queue.stats
    assert stats.dropped[q.RETRIES_EXHAUSTED] == 2 and stats.sent == 0 and stats.retries == 2


async def test_only_the_failed_events_are_sent_again_and_rejected_ones_are_counted():
    sink = FakeSink([Delivery(retry=[1], rejected=1), "ok"])
    d, _ = dispatcher(sink)
    c1, c2, c3 = captured(), captured(), captured()
    c2.call = ev.CallIds("second", 0)
    await d.deliver([c1, c2, c3])
    assert sink.sent[1] == ["second"]
    assert d.queue.stats.sent == 2 and d.queue.stats.dropped[q.REJECTED] == 1


async def test_stop_sends_what_is_queued_then_counts_the_rest_as_shutdown():
    class Never(FakeSink):
        async def send(self, events):
            await asyncio.Event().wait()

    d, _ = dispatcher(Never([]))
    for _ in range(3):
        d.queue.put(captured())
    d.start()
    await asyncio.sleep(0)
    await d.stop(0.05)
    assert d.queue.stats.dropped[q.SHUTDOWN] == 3 and len(d.queue) == 0


# ---- the filter


class Exchange:
    message_offset = 0

    def __init__(self, fmt: str = PROTOBUF) -> None:
        self.message_format = fmt
        self.on_message: Any = None

    def observe(self, on_message) -> None:
        self.on_message = on_message


async def ok(call: Call) -> Outcome:
    return Outcome(0)  # type: ignore[arg-type]


def infer_call(exchange, model: str = "") -> Call:
    return Call(method=contract.MODEL_INFER, metadata=[("ce-id", "abc")], deadline=None, protocol="grpc",
                model=model, exchange=exchange)  # fmt: skip


async def run_calls(f: CaptureFilter, n: int, model_bytes: bytes, records: list[Any]) -> int:
    observed = 0
    for _ in range(n):
        exchange = Exchange()
        await f(infer_call(exchange), ok)
        if exchange.on_message is not None:
            observed += 1
            exchange.on_message(True, model_bytes)
            exchange.on_message(False, b"resp")
    return observed


async def test_each_rule_gets_its_own_ratio_with_one_draw_for_the_rest():
    s = settings({"sinks": SINK, "rules": [{"model": "digits", "ratio": 0.5}, {"model": "*", "ratio": 0.1}]})
    records: list[ev.Captured] = []
    f = CaptureFilter(s, records.append, rng=random.Random(7).random)
    digits = pb.ModelInferRequest(model_name="digits").SerializeToString()
    other = pb.ModelInferRequest(model_name="other").SerializeToString()
    await run_calls(f, 4000, digits, records)
    assert 1800 < len(records) / 2 < 2200
    records.clear()
    observed = await run_calls(f, 4000, other, records)
    assert observed > 1800  # drawn against the top ratio, 0.5 ...
    assert 300 < len(records) / 2 < 500  # ... then against its own, 0.1


async def test_mode_redaction_truncation_and_ids():
    s = settings({"sinks": SINK, "max_payload_bytes": 8, "rules": [{"model": "*", "mode": "response"}]})
    records: list[ev.Captured] = []
    f = CaptureFilter(s, records.append)
    exchange = Exchange(JSON)
    await f(infer_call(exchange, model="digits"), ok)
    exchange.on_message(True, b'{"inputs": []}')
    exchange.on_message(False, b'{"outputs": [1, 2, 3]}')
    (r,) = records
    assert not r.request and r.content_type == ev.JSON and r.call.given == "abc"
    assert r.data == b'{"output' and r.size == 22 and r.truncated and f.truncated == 1


async def test_calls_not_drawn_or_without_rules_are_never_observed():
    s = settings({"sinks": SINK, "rules": [{"model": "*", "ratio": 0.0}]})
    f = CaptureFilter(s, lambda r: None)
    exchange = Exchange()
    await f(infer_call(exchange), ok)
    other = Call(method=contract.SERVER_LIVE, metadata=[], deadline=None, protocol="grpc", exchange=exchange)
    await f(other, ok)
    assert exchange.on_message is None


async def test_new_rules_apply_to_the_next_call_and_not_to_one_already_drawn():
    records: list[ev.Captured] = []
    f = CaptureFilter(settings({"sinks": SINK, "rules": [{"model": "*"}]}), records.append)
    drawn = Exchange()
    await f(infer_call(drawn), ok)
    f.use(settings({"sinks": SINK, "rules": [{"model": "*", "ratio": 0.0}]}))
    later = Exchange()
    await f(infer_call(later), ok)
    assert later.on_message is None
    drawn.on_message(True, b"")
    assert len(records) == 1

