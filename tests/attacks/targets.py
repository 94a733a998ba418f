"""What the attacks are sent to: the digits model (restarted when an attack left it unwell) and a sidecar.

Each attack gets a front door of its own, so one class's damage never lands in the next class's
numbers; the model is shared while it still answers a ModelInfer within 1 s directly. Knows
nothing about attack classes or how they are judged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from inference import grpc_service_pb2_grpc as pb_grpc
from tests.attacks.spec import Target
from tests.attacks.watch import infer_request
from tests.support.procs import HOST, Proc, start_model, start_sidecar

# An attacked sidecar gets this long to exit on SIGTERM (graceful drain is tested elsewhere).
STOP_S = 3.0


class Model:
    """The digits model, started afresh when it is gone or no longer answers within 1 s."""

    def __init__(self) -> None:
        self.proc: Proc | None = None

    def get(self) -> Proc:
        if self.proc is None or self.proc.popen.poll() is not None or not answers(self.proc.ports["grpc"]):
            self.stop()
            self.proc = start_model()
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


def answers(port: int) -> bool:
    with grpc.insecure_channel(f"{HOST}:{port}") as ch:
        try:
            return bool(pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request(), timeout=1.0).outputs)
        except grpc.RpcError:
            return False


def target(name: str, proc: Proc, model: Proc, *, http: bool = True) -> Target:
    return Target(
        name=name,
        host=HOST,
        port=proc.ports["grpc"],
        http_port=proc.ports["http"] if http else None,
        pid=proc.pid,
        model_pid=model.pid,
        alive=lambda: proc.popen.poll() is None,
    )


@contextlib.contextmanager
def sidecar(model: Proc, dataplane: str, *flags: str) -> Iterator[tuple[Proc, Target]]:
    """A sidecar on `dataplane` in front of `model`, with its defaults but for `flags`."""
    proc = start_sidecar(model.ports["grpc"], "--dataplane", dataplane, *flags)
    try:
        yield proc, target(dataplane, proc, model)
    finally:
        proc.stop(timeout=STOP_S)
