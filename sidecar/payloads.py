"""The payload features the inference policy file asks for (capture and batching): their filters, the
capture sinks and their delivery loops, their metrics, and start/stop.

Sits beside the composition root, as observability.py does. With no file, or a file without a
section, a feature is off and puts no filter in any chain, so it costs nothing per call. The file
is read once at start; its rules are frozen values handed to the filters, so a policy that is
reloaded at run time (issue 15's policy document) can hand capture new ones in one place
(`CaptureFilter.use`); batching's rules shape queues that hold calls, and change with a restart.
"""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sidecar.batching.policy import BatchingRule, read_batching
from sidecar.capture.policy import CaptureSettings, no_capture, read_capture
from sidecar.config import SidecarConfig
from sidecar.config_section import Section
from sidecar.core.errors import ConfigError
from sidecar.observability import Telemetry

if TYPE_CHECKING:
    from sidecar.capture.dispatch import Dispatcher, Sink
    from sidecar.capture.policy import SinkSettings
    from sidecar.filters.batching import BatchingFilter
    from sidecar.filters.capture import CaptureFilter
    from sidecar.filters.chain import Filter

# Bytes a Kafka record may carry beyond its payload: the CloudEvents headers.
_KAFKA_HEADROOM = 64 * 1024
# How long stopping waits for the sinks to take what is still queued.
_FLUSH_AT_STOP = 10.0


@dataclass(frozen=True, slots=True)
class InferencePolicy:
    capture: CaptureSettings
    batching: Mapping[str, BatchingRule] = field(default_factory=lambda: MappingProxyType({}))


def load_inference_policy(path: pathlib.Path, *, app_name: str, http_port: int) -> InferencePolicy:
    """The policy in a YAML file; ConfigError naming the file and the key when it is wrong."""
    where = f"inference_policy_file {path}"
    import yaml  # here: only a sidecar given the file needs PyYAML

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from None
    top = Section(doc, where, root=True)
    section = top.section("capture")
    capture = (
        read_capture(section, app_name=app_name, http_port=http_port)
        if top.has("capture")
        else no_capture(app_name, http_port)
    )
    batching = read_batching(top.sections("batching"))
    top.done()
    return InferencePolicy(capture, batching)


class Payloads:
    def __init__(self, config: SidecarConfig, telemetry: Telemetry) -> None:
        name, port = config.app_name, config.http_port
        self.policy = (
            load_inference_policy(pathlib.Path(config.inference_policy_file), app_name=name, http_port=port)
            if config.inference_policy_file
            else InferencePolicy(no_capture(name, port))
        )
        self._flush_at_stop = min(config.drain_timeout, _FLUSH_AT_STOP)
        self.dispatchers: list[Dispatcher] = []
        self.capture: CaptureFilter | None = None
        self.batching: BatchingFilter | None = None
        capture = self.policy.capture
        if capture.enabled:
            # Imported only when on: a sidecar that captures nothing loads none of it.
            from sidecar.capture.dispatch import Dispatcher
            from sidecar.capture.queue import Fanout, SinkQueue
            from sidecar.filters.capture import CaptureFilter

            prefix = _id_prefix()
            for sink in capture.sinks:
                queue = SinkQueue(sink.name, max_events=capture.queue_events, max_bytes=capture.queue_bytes)
                self.dispatchers.append(Dispatcher(queue, _sink(sink, capture), capture, id_prefix=prefix))
            self.capture = CaptureFilter(capture, Fanout([d.queue for d in self.dispatchers]).put)
            telemetry.metrics.watch_capture(self.capture_stats)
        if self.policy.batching:
            from sidecar.filters.batching import BatchingFilter

            batching = self.batching = BatchingFilter(self.policy.batching)
            telemetry.metrics.watch_batching(
                lambda: {m: b.stats for m, b in batching.batchers.items()},
                lambda: {m: b.waiting for m, b in batching.batchers.items()},
            )

    def filters(self) -> list[Filter]:
        """Capture, then batching: innermost in the ingress chains, capture seeing each caller's own
        messages, the batcher standing where they are forwarded."""
        found: list[Filter] = []
        if self.capture is not None:
            found.append(self.capture)
        if self.batching is not None:
            found.append(self.batching)
        return found

    def capture_stats(self) -> dict[str, Any]:
        return {
            "sinks": {
                d.queue.name: {
                    "enqueued": d.queue.stats.enqueued,
                    "sent": d.queue.stats.sent,
                    "retries": d.queue.stats.retries,
                    "dropped": dict(d.queue.stats.dropped),
                    "queued": len(d.queue),
                    "queued_bytes": d.queue.bytes,
                }
                for d in self.dispatchers
            },
            "truncated": self.capture.truncated if self.capture is not None else 0,
        }

    async def start(self) -> None:
        for d in self.dispatchers:
            d.start()

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop(self._flush_at_stop) for d in self.dispatchers))


def _id_prefix() -> str:
    """This process's ce-id prefix: a random UUID's first 20 digits; a call's number fills the last 12."""
    u = uuid.uuid4().hex
    return f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-"


def _sink(settings: SinkSettings, capture: CaptureSettings) -> Sink:
    from sidecar.capture.policy import FileSinkSettings, HttpSinkSettings

    if isinstance(settings, HttpSinkSettings):
        from sidecar.capture.http_sink import HttpSink

        return HttpSink(settings)
    if isinstance(settings, FileSinkSettings):
        from sidecar.capture.file_sink import FileSink

        return FileSink(settings)
    from sidecar.capture.kafka_sink import KafkaSink

    return KafkaSink(settings, max_request_bytes=capture.max_payload_bytes + _KAFKA_HEADROOM)
