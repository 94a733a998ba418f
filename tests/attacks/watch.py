"""The legitimate client while an attack runs: ModelInfer, grpc.health.v1 Check and GET /readyz, polled.

Runs as a process of its own (`python -m tests.attacks.watch`), so neither the attacker's work nor
the test's interpreter can delay what it measures. Each probe has its own thread and deadline and
calls over its own connection, not the attacker's. It prints `watching` once every probe has
answered once; on stdin, `after` marks the attack's end (ModelInfer then opens a new connection, as
a client arriving after the attack would) and `stop` prints every sample as one JSON line and exits.
Knows nothing about attacks or targets' processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def infer_request() -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[1, 64])
    return pb.ModelInferRequest(model_name="digits", inputs=[tensor], raw_input_contents=[bytes(256)])


class Watch:
    def __init__(self, host: str, grpc_port: int, http_port: int | None, interval: float, deadline: float):
        self._target = f"{host}:{grpc_port}"
        self._readyz = f"http://{host}:{http_port}/readyz" if http_port else None
        self._interval = interval
        self._deadline = deadline
        self._t0 = time.monotonic()
        self.phase = "during"
        self.samples: list[tuple[str, str, float, float, bool, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._health_channel = grpc.insecure_channel(self._target)
        self._infer_channel = grpc.insecure_channel(self._target)
        self._old: list[grpc.Channel] = []
        self._threads: list[threading.Thread] = []
        self._first = {"infer": threading.Event(), "health": threading.Event(), "readyz": threading.Event()}
        if self._readyz is None:
            self._first["readyz"].set()

    def start(self) -> None:
        probes: list[tuple[str, Callable[[], str]]] = [("infer", self._infer), ("health", self._health)]
        if self._readyz is not None:
            probes.append(("readyz", self._ready))
        for name, probe in probes:
            thread = threading.Thread(target=self._loop, args=(name, probe), daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_first(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        return all(e.wait(max(0.0, end - time.monotonic())) for e in self._first.values())

    def after(self) -> None:
        # The old channel stays open: a call still on it ends as it would have.
        self._old.append(self._infer_channel)
        self._infer_channel = grpc.insecure_channel(self._target)
        with self._lock:
            self.phase = "after"

    def stop(self) -> None:
        """Stop calling; wait for the calls in flight (each ends by its deadline)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self._deadline + 1.0)
        for channel in (*self._old, self._infer_channel, self._health_channel):
            channel.close()

    def _loop(self, name: str, probe: Callable[[], str]) -> None:
        while not self._stop.is_set():
            phase = self.phase
            start = time.monotonic()
            try:
                error = probe()
            except grpc.RpcError as e:
                error = f"{e.code().name}: {e.details()}"
            except (OSError, urllib.error.URLError) as e:
                error = f"{type(e).__name__}: {e}"
            ms = (time.monotonic() - start) * 1000
            ok = not error and ms <= self._deadline * 1000
            if ok and phase == "during":
                self._first[name].set()  # the first success marks readiness to watch
            with self._lock:
                if self._first[name].is_set() or phase == "after":
                    self.samples.append((phase, name, round(start - self._t0, 3), round(ms, 1), ok, error))
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - start)))

    def _infer(self) -> str:
        stub = pb_grpc.GRPCInferenceServiceStub(self._infer_channel)
        reply = stub.ModelInfer(infer_request(), timeout=self._deadline)
        return "" if reply.outputs else "ModelInfer answered no outputs"

    def _health(self) -> str:
        stub = health_pb2_grpc.HealthStub(self._health_channel)
        status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self._deadline).status
        return (
            ""
            if status == SERVING
            else f"health status {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        )

    def _ready(self) -> str:
        assert self._readyz is not None
        try:
            with urllib.request.urlopen(self._readyz, timeout=self._deadline) as r:
                return "" if r.status == 200 else f"/readyz answered {r.status}"
        except urllib.error.HTTPError as e:
            return f"/readyz answered {e.code}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, default=0, help="the sidecar's /readyz; 0: none")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between one probe's calls")
    p.add_argument("--deadline", type=float, default=1.0, help="seconds a call may take")
    a = p.parse_args(argv)
    watch = Watch(a.host, a.grpc_port, a.http_port or None, a.interval, a.deadline)
    watch.start()
    if not watch.wait_first(20.0):
        report: dict[str, Any] = {"error": "the target never answered every probe", "samples": watch.samples}
        print(json.dumps(report), flush=True)
        return 1
    print("watching", flush=True)
    for line in sys.stdin:
        if line.strip() == "after":
            watch.after()
        elif line.strip() == "stop":
            break
    watch.stop()
    print(json.dumps({"samples": watch.samples}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
