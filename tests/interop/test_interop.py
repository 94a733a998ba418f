"""The gRPC interop cases through the sidecar: grpc-go's interop client and a grpcio client, each
against grpc-go's interop server as the model, directly (the control) and through the sidecar on
each data plane.

The Go binaries come from scripts/setup-interop.sh (a no-op while they are up to date); the
grpc.testing stubs for the grpcio client are generated per run (tests/interop/protos.py).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.interop.cases import CASES, StatusMismatch
from tests.interop.protos import Protos, generate
from tests.support import REPO
from tests.support.procs import HOST, Proc, running, start_listening, start_sidecar

# A cold build of the Go binaries (the module's first fixture) takes about two minutes on two
# cores, beyond the suite's 120 s default; every call below carries its own deadline.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SETUP = REPO / "scripts" / "setup-interop.sh"
BUILD = REPO / "tests" / "interop" / "go" / "build"
SERVER_READY = "interop server listening on "  # tests/interop/go/main.go prints it
CLIENT_DEADLINE = 30.0

# Races of grpc's own, not the sidecar's: on these targets, these cases may also end with the
# status given here (and a test still fails on any third outcome). Measured here, 100 runs of each.
KNOWN_RACES: dict[tuple[str, str], grpc.StatusCode] = {
    # docs/known-issues.md: the grpcio data plane relays a method outside the OIP contract as a
    # streaming call, and an immediate status on it sometimes reaches the caller as INTERNAL (a
    # race in gRPC Core). grpc-go answers an unknown service at once (41 and 44 of 100 calls, Go
    # and grpcio client); an unimplemented method of a known service only after reading the
    # request, so unimplemented_method is not affected (0 of 100).
    ("grpcio", "unimplemented_service"): grpc.StatusCode.INTERNAL,
    # grpc-go's server resets the stream (RST_STREAM CANCEL) at the deadline it was sent; straight
    # from grpcio to grpc-go over loopback, that reset can beat the client's own timer, and gRPC
    # Core then reports CANCELLED (grpcio client, 10 of 100). A sidecar in between adds enough
    # latency for the client's timer to win (0 of 100 on either data plane).
    ("direct", "timeout_on_sleeping_server"): grpc.StatusCode.CANCELLED,
}
# The status grpc-go's client names in its FATAL line: `= _, Internal, want` or `code = Internal`.
GO_STATUS = re.compile(r"(?:= _, |code = )(\w+)")


@dataclass(frozen=True)
class Target:
    """Where the clients dial: `direct` is the interop server itself, else a sidecar's data plane."""

    name: str
    port: int

    def may_also_end(self, case: str) -> grpc.StatusCode | None:
        return KNOWN_RACES.get((self.name, case))


@pytest.fixture(scope="module")
def binaries() -> Path:
    done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"scripts/setup-interop.sh failed:\n{done.stdout}{done.stderr}"
    return BUILD


@pytest.fixture(scope="module")
def interop_server(binaries: Path) -> Iterator[Proc]:
    argv = [str(binaries / "interop-server"), "-host", HOST, "-port", "0"]
    proc = start_listening(argv, name="interop-server", ready_prefix=SERVER_READY)
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module", params=["direct", "relay", "grpcio"])
def target(request: pytest.FixtureRequest, interop_server: Proc) -> Iterator[Target]:
    name: str = request.param
    model_port = interop_server.ports["grpc"]
    if name == "direct":
        yield Target(name, model_port)
        return
    with running(start_sidecar(model_port, "--dataplane", name, app_name="interop")) as sidecar:
        yield Target(name, sidecar.ports["grpc"])


@pytest.fixture(scope="module")
def protos(tmp_path_factory: pytest.TempPathFactory) -> Protos:
    return generate(tmp_path_factory.mktemp("interop-protos"))


@pytest.fixture
async def channel(target: Target) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"{HOST}:{target.port}") as ch:
        yield ch


@pytest.mark.parametrize("case", list(CASES))
def test_go_client(binaries: Path, target: Target, case: str) -> None:
    argv = [
        str(binaries / "interop-client"),
        f"--server_host={HOST}",
        f"--server_port={target.port}",
        f"--test_case={case}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_DEADLINE, check=False)
    if done.returncode != 0 and (race := target.may_also_end(case)) is not None:
        fatal = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        if (m := GO_STATUS.search(fatal)) and m.group(1) == _go_name(race):
            return
    assert done.returncode == 0, f"{case} via {target.name} failed:\n{done.stderr}"


def _go_name(code: grpc.StatusCode) -> str:
    """grpc-go's name of a status code (codes.Code.String): Internal, DeadlineExceeded, Canceled."""
    if code is grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(word.capitalize() for word in code.name.split("_"))


@pytest.mark.parametrize("case", list(CASES))
async def test_grpcio_client(protos: Protos, target: Target, channel: grpc.aio.Channel, case: str) -> None:
    try:
        await CASES[case](protos, channel)
    except StatusMismatch as e:
        if e.got is not target.may_also_end(case):
            raise
