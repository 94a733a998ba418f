"""Fuzz the REST ingress over real sockets: requests generated from its OpenAPI document, and hostile JSON.

Against a healthy model (the Python digits example behind a sidecar), every answer must be:
- below 500: a 5xx means the model or the sidecar failed, and neither should, whatever the
  caller sends. Two exceptions, both documented in the OpenAPI document: 504 when the request
  carried a valid grpc-timeout under a second (schemathesis sends "0H"), the caller's own
  deadline; and 501 when an output holds NaN or infinity (pixels of 1e39 are infinite as FP32,
  and so are the model's probabilities), which JSON cannot carry: the message says so and
  tells the caller to ask for that output as binary;
- a 4xx with an OIP error body, `{"error": "<non-empty message>"}`;
- what the OpenAPI document says: a documented status, content type, headers and body schema
  (schemathesis's conformance checks), so the document is checked against the server too.

Deterministic by default (derandomized, no example database). SIDECAR_FUZZ_EXAMPLES raises the
budget of each test (CI: 40 per operation from the document, 300 hostile bodies), and
SIDECAR_FUZZ_SEED=N explores others, as in test_relay_fuzz.py:
  SIDECAR_FUZZ_EXAMPLES=20000 SIDECAR_FUZZ_SEED=$RANDOM \
      python3 -m pytest tests/fuzz/test_rest_fuzz.py -o timeout=0
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sidecar.core.deadline import grpc_timeout
from tests.fuzz import hostile_json
from tests.support.procs import HOST, Proc, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "sidecar" / "oip" / "openapi.yaml"
EXAMPLES = os.environ.get("SIDECAR_FUZZ_EXAMPLES")
SEED = os.environ.get("SIDECAR_FUZZ_SEED")
# Small, so that bodies beyond it are cheap to build: the 413 path is fuzzed too.
MAX_MESSAGE_BYTES = 256 * 1024
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(SPEC)


def budget(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    chosen = settings(
        max_examples=int(EXAMPLES) if EXAMPLES else examples,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    return lambda test: chosen(seed(int(SEED))(test)) if SEED is not None else chosen(test)


@pytest.fixture(scope="module")
def sidecar() -> Iterator[Proc]:
    flags = ("--model", "digits", "--max-message-bytes", str(MAX_MESSAGE_BYTES))
    with running(start_model()) as model, running(start_sidecar(model.ports["grpc"], *flags)) as proc:
        yield proc


def _short_deadline(headers: dict[str, str]) -> bool:
    value = next((v for k, v in headers.items() if k.lower() == "grpc-timeout"), None)
    seconds = grpc_timeout(value) if value is not None else None
    return seconds is not None and seconds < 1.0


def check_answer(
    status: int, content_type: str, body: bytes, sent_headers: dict[str, str], what: str
) -> None:
    """No 5xx but the two documented ones; every 4xx an OIP error body."""
    cannot_carry = status == 501 and b"JSON cannot carry" in body
    if status >= 500 and not (status == 504 and _short_deadline(sent_headers)) and not cannot_carry:
        raise AssertionError(f"{what}: the sidecar answered {status}: {body[:500]!r}")
    if status >= 400:
        assert content_type.startswith("application/json"), f"{what}: {status} as {content_type}"
        error = json.loads(body)
        assert isinstance(error, dict) and isinstance(error.get("error"), str) and error["error"], (
            f"{what}: {status} without an OIP error body: {body[:500]!r}"
        )


@schema.parametrize()
@budget(40)
def test_requests_from_the_openapi_document_get_no_5xx_and_conform(case, sidecar):
    response = case.call(base_url=f"http://{HOST}:{sidecar.ports['http']}", timeout=30)
    sent = {k: str(v) for k, v in (case.headers or {}).items()}
    what = f"{case.method} {case.formatted_path}"
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    check_answer(response.status_code, content_type, response.content, sent, what)
    case.validate_response(response, checks=CONFORMANCE)


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/v2/models/digits/infer", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


@given(hostile_json.requests())
@budget(300)
def test_hostile_json_gets_no_5xx_and_an_oip_error(sidecar, request_parts: hostile_json.Request):
    headers: dict[str, Any] = {"Content-Type": "application/json", **request_parts.headers}
    status, content_type, body = post(sidecar.ports["http"], request_parts.body, headers)
    check_answer(status, content_type, body, request_parts.headers, request_parts.why)


def test_the_model_still_answers_after_the_fuzz(sidecar):
    x = [0.0] * 64
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 64], "datatype": "FP32", "data": x}]})
    status, _, answer = post(sidecar.ports["http"], body.encode(), {"Content-Type": "application/json"})
    assert status == 200, answer
    assert {o["name"] for o in json.loads(answer)["outputs"]} == {"LABEL", "PROBABILITIES"}


def test_strategy_covers_its_kinds():
    # Each kind of hostility is drawn at least once in a small sample: the strategy is not lopsided.
    seen: set[str] = set()

    @given(hostile_json.requests())
    @settings(max_examples=400, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def sample(r: hostile_json.Request) -> None:
        seen.add(r.why.split(":", 1)[0])

    sample()
    assert seen >= set(hostile_json.KINDS), set(hostile_json.KINDS) - seen

