"""Forward one gRPC call as raw bytes from a server context to a client multicallable, and back.

Shared by the ingress data plane (to the model) and egress (to other
services), which never import each other. Knows nothing about filters,
discovery or policies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
import grpc.aio

from sidecar.core.call import Metadata, Outcome
from sidecar.core.status import Code

_CODES_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}

# grpc is untyped here (Any); the alias documents what is meant.
Context: TypeAlias = Any


def to_grpc_code(code: Code) -> grpc.StatusCode:
    return _CODES_BY_VALUE[int(code)]


def from_grpc_code(code: grpc.StatusCode | None) -> Code:
    return Code.UNKNOWN if code is None else Code(code.value[0])


@dataclass(slots=True)
class Forwarded:
    """What an upstream call produced, before it is written back to the caller."""

    outcome: Outcome
    response: bytes | None = None
    initial_metadata: Metadata | None = None
    # True once any response message went to the caller: the call can no longer be retried.
    committed: bool = False


async def unary(
    mc: grpc.aio.UnaryUnaryMultiCallable, request: bytes, metadata: Metadata, timeout: float | None
) -> Forwarded:
    """A unary call; nothing is sent to the caller yet, so the caller may still retry it."""
    started = time.monotonic()
    upstream = mc(request, metadata=metadata, timeout=timeout)
    try:
        response = await upstream
        initial = await upstream.initial_metadata()
        trailing = await upstream.trailing_metadata()
    except grpc.aio.AioRpcError as e:
        return failed(e, timeout, time.monotonic() - started)
    return Forwarded(
        Outcome(Code.OK, "", list(trailing) if trailing else []),
        response,
        list(initial) if initial else None,
    )


async def send_unary_reply(context: Context, forwarded: Forwarded) -> bytes | None:
    """Write a unary result's headers to the caller; returns the response for the handler to return."""
    if forwarded.initial_metadata:
        await context.send_initial_metadata(forwarded.initial_metadata)
    return forwarded.response


async def streaming(
    mc: grpc.aio.StreamStreamMultiCallable,
    requests: AsyncIterator[bytes],
    context: Context,
    metadata: Metadata,
    timeout: float | None,
    sent: Callable[[bytes], None] = lambda message: None,
) -> Forwarded:
    """A call of any streaming kind, relayed message by message in both directions; `sent` hears
    of each response message written to the caller."""
    started = time.monotonic()
    upstream = mc(metadata=metadata, timeout=timeout)
    # Our own task moves request messages up, so the handler can stop it (and
    # await it) before it returns.
    pump = asyncio.create_task(_pump(requests, upstream))
    forwarded = Forwarded(Outcome(Code.OK))
    try:
        initial = await upstream.initial_metadata()
        if initial:
            await context.send_initial_metadata(initial)
        while True:
            message = await upstream.read()
            if message is grpc.aio.EOF:
                break
            forwarded.committed = True
            await context.write(message)
            sent(message)
        code = await upstream.code()
        details = await upstream.details()
        trailing = await upstream.trailing_metadata()
    except grpc.aio.AioRpcError as e:
        result = failed(e, timeout, time.monotonic() - started)
        if result.initial_metadata:
            await context.send_initial_metadata(result.initial_metadata)
        result.committed = forwarded.committed
        return result
    finally:
        if not upstream.done():
            upstream.cancel()
        if not pump.done():
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
    forwarded.outcome = Outcome(from_grpc_code(code), details or "", list(trailing) if trailing else [])
    return forwarded


async def _pump(requests: AsyncIterator[bytes], upstream: grpc.aio.StreamStreamCall) -> None:
    try:
        async for message in requests:
            await upstream.write(message)
        await upstream.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass  # the upstream call ended first; its status is what the caller gets


def ended_by_deadline(code: Code, timeout: float | None, elapsed: float) -> bool:
    """A CANCELLED that the deadline caused: a server that enforces the deadline itself resets the
    stream (grpc-java sends RST_STREAM CANCEL as it passes), and the client may see the reset before
    its own timer fires. The caller's deadline ended the call, so it is DEADLINE_EXCEEDED."""
    return code is Code.CANCELLED and timeout is not None and elapsed >= timeout


def failed(e: grpc.aio.AioRpcError, timeout: float | None = None, elapsed: float = 0.0) -> Forwarded:
    initial = e.initial_metadata()
    trailing = e.trailing_metadata()
    code, details = from_grpc_code(e.code()), e.details() or ""
    if ended_by_deadline(code, timeout, elapsed):
        details = f"deadline exceeded; the upstream reset the call as it passed ({details})"
        code = Code.DEADLINE_EXCEEDED
    return Forwarded(
        Outcome(code, details, list(trailing) if trailing else []),
        None,
        list(initial) if initial else None,
    )


def finish(context: Context, outcome: Outcome) -> None:
    """Set the caller's trailers and status from an outcome."""
    if outcome.trailing_metadata:
        context.set_trailing_metadata(tuple(outcome.trailing_metadata))
    if outcome.code is not Code.OK:
        context.set_code(to_grpc_code(outcome.code))
        context.set_details(outcome.message)
