"""The inference policy file: its sections read, its mistakes named, and what it puts in the chain."""

from __future__ import annotations

import pathlib

import pytest

from sidecar.config import load_config
from sidecar.core.errors import ConfigError
from sidecar.filters.batching import BatchingFilter
from sidecar.filters.capture import CaptureFilter
from sidecar.observability import Telemetry
from sidecar.payloads import Payloads, load_inference_policy


def payloads(tmp_path: pathlib.Path, text: str | None) -> Payloads:
    argv = ["--app-name", "digits", "--model-address", "127.0.0.1:9000", "--metrics", "off"]
    if text is not None:
        path = tmp_path / "policy.yaml"
        path.write_text(text)
        argv += ["--inference-policy-file", str(path)]
    config = load_config(argv, {})
    return Payloads(config, Telemetry(config))


def test_no_file_puts_nothing_in_the_chain(tmp_path: pathlib.Path) -> None:
    assert payloads(tmp_path, None).filters() == []
    assert payloads(tmp_path, "").filters() == []


def test_both_sections_give_capture_then_batching_and_a_loop_per_sink(tmp_path: pathlib.Path) -> None:
    p = payloads(
        tmp_path,
        """
capture:
  sinks: [{file: {path: /tmp/x.jsonl}}, {http: {url: "http://collector/"}}]
  rules: [{model: digits, ratio: 0.5}]
batching:
  - {model: digits, max_batch_size: 8, max_latency: 2ms}
""",
    )
    capture, batching = p.filters()
    assert isinstance(capture, CaptureFilter) and isinstance(batching, BatchingFilter)
    assert [d.sink.name for d in p.dispatchers] == ["file", "http"]
    assert p.policy.capture.identity.inference_service == "digits"
    assert p.policy.batching["digits"].max_latency == 0.002


@pytest.mark.parametrize(
    "text, message",
    [
        ("captur: {}", "unknown key 'captur' (known: batching, capture)"),
        ("capture: [1]", "capture: expected a mapping"),
        ("batching: {model: m}", "batching: expected a list"),
        (
            "batching: [{model: m, max_batch_size: 0}]",
            "batching[0].max_batch_size: 0 is out of range 1..1000000",
        ),
        ("capture: {sinks: [{kafka: {topic: t}}]}", "capture.sinks[0].kafka.bootstrap_servers: required"),
        ("capture: {", "not valid YAML"),
    ],
)
def test_mistakes_fail_the_start_naming_the_file_and_the_key(
    tmp_path: pathlib.Path, text: str, message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_inference_policy(path, app_name="digits", http_port=8080)
    assert str(e.value).startswith(f"inference_policy_file {path}: ")
    assert message in str(e.value), str(e.value)


def test_a_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_inference_policy(tmp_path / "absent.yaml", app_name="digits", http_port=8080)
