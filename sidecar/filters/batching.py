"""Filter that batches concurrent ModelInfer calls for models with a batching rule. Goes innermost: it
stands where the call's message is forwarded, and forwards a batch in its place.

A call whose model has a rule, whose exchange hands its messages over (sidecar/batching/seam.py)
and whose request fits (sidecar/batching/merge.py) waits in the model's batcher. When its batch
goes, one call of the sidecar's own carries the merged request through the rest of the chain, on
an exchange of the same transport as the call that opened the batch, with that call's metadata
and the latest of the members' deadlines; the reply is split and each caller answered with its
own rows, the model's headers and trailers. A model error fails that batch's calls, each with the
model's status and message. A reply the split cannot cut (other rows than the batch) sends each
call again on its own. Everything else passes through as it came, counted by why. Knows nothing
about transports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from inference import grpc_service_pb2 as pb
from sidecar.batching import merge
from sidecar.batching.batcher import Batcher, Member, Sender, Timers, answer
from sidecar.batching.policy import BatchingRule
from sidecar.batching.seam import Batchable, NotHeld, batchable
from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.clock import Clock, monotonic
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.oip import contract

log = logging.getLogger(__name__)

# What a member is told when the batch's reply could not be cut: go to the model on your own.
ALONE: Final = object()


@dataclass(slots=True)
class _Waiting:
    call: Call
    exchange: Batchable
    request: pb.ModelInferRequest


@dataclass(frozen=True, slots=True)
class _Reply:
    response: pb.ModelInferResponse
    initial: Metadata
    outcome: Outcome


class BatchingFilter:
    def __init__(
        self, rules: Mapping[str, BatchingRule], *, clock: Clock = monotonic, timers: Timers | None = None
    ) -> None:
        self.batchers = {model: Batcher(rule, clock=clock, timers=timers) for model, rule in rules.items()}

    async def __call__(self, call: Call, next: Next) -> Outcome:
        exchange = batchable(call.exchange)
        if exchange is None or call.method != contract.MODEL_INFER:
            return await next(call)
        try:
            request = exchange.infer_request()
        except NotHeld:
            held_for = self.batchers.get(call.model)
            if held_for is not None:
                held_for.stats.passthrough(merge.NOT_BATCHABLE)
            return await next(call)
        except Exception:
            return await next(call)  # not a valid request: the model says what is wrong
        batcher = self.batchers.get(request.model_name)
        if batcher is None:
            return await next(call)
        rule = batcher.rule
        fits = merge.batchable(request, rule.batch_dimension, rule.max_batch_size)
        if isinstance(fits, merge.PassThrough):
            batcher.stats.passthrough(fits.reason)
            return await next(call)
        waiting = _Waiting(call, exchange, request)
        sender = self._sender(batcher, next, waiting)
        member = batcher.add(fits.key, fits.rows, waiting, call.deadline, sender)
        if member is None:
            return Outcome(
                Code.RESOURCE_EXHAUSTED,
                f'ModelInfer: model "{rule.model}" has {rule.max_queued} calls waiting to be batched'
                " (batching.max_queued)",
            )
        exchange.waits()
        result = await member.future
        if result is ALONE:
            batcher.stats.passthrough(merge.REPLY_MISMATCH)
            return await next(call)
        if isinstance(result, _Reply):
            await exchange.respond_infer(result.response, result.initial)
            return result.outcome
        assert isinstance(result, Outcome)
        return result

    def _sender(self, batcher: Batcher, next: Next, opener: _Waiting) -> Sender:
        """What sends the batch `opener` opens, if it does: through opener's chain, on an exchange of
        opener's transport, whoever of the batch is left by then."""

        async def send(members: Sequence[Member]) -> None:
            await _send_batch(batcher.rule, members, next, opener)

        return send


async def _send_batch(rule: BatchingRule, members: Sequence[Member], next: Next, opener: _Waiting) -> None:
    waiting: list[_Waiting] = [m.context for m in members]
    requests = [w.request for w in waiting]
    dim = rule.batch_dimension
    try:
        merged = merge.merge(requests, dim)
        first = waiting[0]
        exchange = opener.exchange.detached(merged)
        call = Call(
            method=contract.MODEL_INFER,
            metadata=list(first.call.metadata),
            deadline=_latest([w.call.deadline for w in waiting]),
            protocol=opener.call.protocol,
            peer=first.call.peer,
            model=rule.model,
            exchange=exchange,
        )
        outcome = await next(call)
        if not outcome.ok:
            for m in members:
                answer(m, Outcome(outcome.code, outcome.message, outcome.trailing_metadata))
            return
        response, initial = exchange.infer_response()
        parts = merge.split(response, requests, [m.rows for m in members], dim)
    except Exception as e:  # a bug here must fail the batch's calls, not leave them waiting
        log.exception("batching: a batch of model %s failed", rule.model)
        for m in members:
            answer(m, Outcome(Code.INTERNAL, f"ModelInfer: batching failed: {e!r}"))
        return
    if isinstance(parts, merge.PassThrough):
        log.warning("batching: model %s: %s; its calls go on their own", rule.model, parts.detail)
        for m in members:
            answer(m, ALONE)
        return
    ok = Outcome(Code.OK, "", outcome.trailing_metadata)
    for m, part in zip(members, parts, strict=True):
        answer(m, _Reply(part, initial, ok))


def _latest(deadlines: Sequence[Deadline | None]) -> Deadline | None:
    """The batch's deadline: the latest of its callers' (none if any caller set none)."""
    known = [d for d in deadlines if d is not None]
    if len(known) < len(deadlines):
        return None
    return max(known, key=lambda d: d.expires_at)
