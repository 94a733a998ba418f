"""A peer's reset at the deadline is the deadline's doing: DEADLINE_EXCEEDED, not CANCELLED."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from sidecar.core.status import Code
from sidecar.transport.grpc_forward import ended_by_deadline, failed

RESET = "Received RST_STREAM with error code 8"


def _reset() -> AioRpcError:
    return AioRpcError(grpc.StatusCode.CANCELLED, Metadata(), Metadata(), RESET)


def test_a_reset_once_the_deadline_passed_is_deadline_exceeded() -> None:
    outcome = failed(_reset(), timeout=0.001, elapsed=0.0012).outcome
    assert outcome.code is Code.DEADLINE_EXCEEDED
    assert "deadline exceeded" in outcome.message and RESET in outcome.message


def test_a_reset_before_the_deadline_stays_cancelled() -> None:
    outcome = failed(_reset(), timeout=5.0, elapsed=0.2).outcome
    assert outcome.code is Code.CANCELLED and outcome.message == RESET


def test_without_a_deadline_a_reset_is_cancelled() -> None:
    assert failed(_reset()).outcome.code is Code.CANCELLED
    assert not ended_by_deadline(Code.CANCELLED, None, 100.0)


def test_only_cancelled_is_reread() -> None:
    assert not ended_by_deadline(Code.UNAVAILABLE, 0.001, 1.0)
    assert ended_by_deadline(Code.CANCELLED, 0.001, 0.001)
