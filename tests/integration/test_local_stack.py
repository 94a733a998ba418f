"""The test stack's own promises: ports it hands out stay free of outgoing connections; a sidecar
whose port was taken before it bound it is started again on others."""

from __future__ import annotations

import pathlib
import socket

import pytest

import local_stack
from tests.support.procs import HOST, running

pytestmark = pytest.mark.integration


def test_free_ports_come_from_below_the_ephemeral_range():
    low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [local_stack.free_port() for _ in range(50)]
    assert all(local_stack._LOWEST_PORT <= p < low for p in ports)
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind((HOST, port))


def test_a_sidecar_whose_port_was_taken_starts_on_others(monkeypatch):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        real = local_stack.free_port
        handed = iter([port])
        monkeypatch.setattr(local_stack, "free_port", lambda: next(handed, None) or real())
        # No model behind it: /livez is enough to show it listens.
        with running(local_stack.start_sidecar(1, wait_ready=False)) as sidecar:
            assert sidecar.ports["grpc"] != port
            assert local_stack.http_get(sidecar.ports["http"], "/livez")[0] == 200
