"""The targets the suite runs against when no --target is given: how to start each one, by name.

An entry starts what it needs through `Servers` (each server once per run, shared by the
entries that use it, stopped in reverse order at the end) and returns the URL to check.
Adding a language is one line in MATRIX, given a function that starts its server and returns a
tests.support.procs.Proc with ports["grpc"] (an OIP gRPC server) or ports["http"] (OIP REST):

    *grpc_model("cpp", start_cpp),   # cpp-direct-grpc, cpp-sidecar-grpc, cpp-sidecar-rest
    *rest_model("php", start_php),   # php-direct-rest: it speaks the REST binding itself
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from tests.conformance.client import Transport
from tests.support.procs import HOST, Proc, free_port, running, start_model, start_sidecar

StartServer = Callable[[], Proc]


class Servers:
    """Processes started for the matrix, each once; closing the stack stops them, last started first."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._started: dict[str, Proc] = {}

    def get(self, key: str, start: StartServer) -> Proc:
        if key not in self._started:
            self._started[key] = self._stack.enter_context(running(start()))
        return self._started[key]


@dataclass(frozen=True)
class Target:
    """One row of the matrix: `start` brings it up (or just names it) and returns its URL."""

    id: str
    transport: Transport
    model: str
    start: Callable[[Servers], str]


def grpc_url(proc: Proc) -> str:
    return f"grpc://{HOST}:{proc.ports['grpc']}"


def http_url(proc: Proc) -> str:
    return f"http://{HOST}:{proc.ports['http']}"


def grpc_model(lang: str, start: StartServer, model: str = "digits", tag: str = "") -> tuple[Target, ...]:
    """A model server speaking OIP gRPC: checked directly, and behind a sidecar over gRPC and REST.

    `tag` names another model of the same server (ids `{lang}-{tag}-...`); its processes are shared."""
    name = f"{lang}-{tag}" if tag else lang

    def server(servers: Servers) -> Proc:
        return servers.get(f"{lang}-model", start)

    def sidecar(servers: Servers) -> Proc:
        port = server(servers).ports["grpc"]
        # One sidecar per server: it probes the server's digits model, and every model passes.
        return servers.get(f"{lang}-sidecar", lambda: start_sidecar(port, "--model", "digits"))

    return (
        Target(f"{name}-direct-grpc", "grpc", model, lambda s: grpc_url(server(s))),
        Target(f"{name}-sidecar-grpc", "grpc", model, lambda s: grpc_url(sidecar(s))),
        Target(f"{name}-sidecar-rest", "rest", model, lambda s: http_url(sidecar(s))),
    )


def rest_model(lang: str, start: StartServer, model: str = "digits", tag: str = "") -> tuple[Target, ...]:
    """A model server speaking the OIP REST binding: checked directly, and behind a sidecar
    (--model-protocol http) over gRPC and REST. `tag` as for grpc_model."""
    name = f"{lang}-{tag}" if tag else lang

    def server(servers: Servers) -> Proc:
        return servers.get(f"{lang}-model", start)

    def sidecar(servers: Servers) -> Proc:
        port = server(servers).ports["http"]
        return servers.get(
            f"{lang}-sidecar",
            lambda: start_sidecar(port, "--model-protocol", "http", "--model", "digits"),
        )

    return (
        Target(f"{name}-direct-rest", "rest", model, lambda s: http_url(server(s))),
        Target(f"{name}-sidecar-grpc", "grpc", model, lambda s: grpc_url(sidecar(s))),
        Target(f"{name}-sidecar-rest", "rest", model, lambda s: http_url(sidecar(s))),
    )


def given(url: str, transport: Transport, model: str) -> Target:
    """The one target named on the command line; nothing is started."""
    return Target(transport, transport, model, lambda _: url)


def _cpp() -> Proc:
    from tests.examples.test_cpp_example import BINARY, start_cpp

    return start_cpp(BINARY)


def _java() -> Proc:
    from tests.examples.test_java_example import start_java

    return start_java(0)


def _php() -> Proc:
    from tests.examples.test_php_example import start_php

    return start_php(free_port())


# Four languages, each behind the sidecar over both ingress protocols; each example's server
# also serves "echo" (BYTES in, BYTES and lengths out), the example model with a BYTES tensor.
MATRIX: tuple[Target, ...] = (
    *grpc_model("python", start_model),
    *grpc_model("python", start_model, model="echo", tag="echo"),
    *grpc_model("cpp", _cpp),
    *grpc_model("cpp", _cpp, model="echo", tag="echo"),
    *grpc_model("java", _java),
    *grpc_model("java", _java, model="echo", tag="echo"),
    *rest_model("php", _php),
    *rest_model("php", _php, model="echo", tag="echo"),
)
