"""Filter that samples calls for payload capture and has the transport hand it their messages.

Per call it looks up the method's rules and draws once against the highest ratio among them: a
call not drawn costs a dict lookup and a random number. A drawn call is observed (the transport's
message seam, sidecar/core/messages.py); at its first request message the model is read (from the
URL for REST, else field 1 of the message) and the first matching rule decides, drawing again for
a rule of a lower ratio, so each rule's own ratio holds. Each message the rule's mode wants becomes
a `Captured` record handed to the sinks' queues: the bytes the transport already holds, cut (one
copy) at `max_payload_bytes`. Events are built later, off the call path. Knows nothing about
transports or sinks.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.capture.events import BINARY_REST, CallIds, Captured, protobuf_type
from sidecar.capture.events import JSON as JSON_TYPE
from sidecar.capture.policy import CaptureRule, CaptureSettings
from sidecar.core.call import Call, Outcome
from sidecar.core.messages import JSON, Observable, observable
from sidecar.filters.chain import Next
from sidecar.oip import contract
from sidecar.oip.model_name import from_grpc_frame, from_message


@dataclass(frozen=True, slots=True)
class _MethodRules:
    top: float  # the highest ratio among the rules: the first draw
    rules: tuple[CaptureRule, ...]
    stream: bool
    types: tuple[str, str]  # protobuf content types of the request and the response


class CaptureFilter:
    def __init__(
        self,
        settings: CaptureSettings,
        put: Callable[[Captured], None],
        *,
        rng: Callable[[], float] = random.random,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._put = put
        self._rng = rng
        self._wall = wall
        self._max_payload = settings.max_payload_bytes
        self._numbers = itertools.count(1)
        self.truncated = 0
        self._by_method: dict[str, _MethodRules] = {}
        self.use(settings)

    def use(self, settings: CaptureSettings) -> None:
        """Take new rules (a reloaded policy): one reference swapped, so a call reads the old rules
        or the new ones, never a mix; calls already drawn finish under the rule they drew."""
        by_method: dict[str, _MethodRules] = {}
        for method in contract.METHODS:
            rules = settings.rules_for(method)
            if rules:
                request, response = contract.MESSAGES[method]
                by_method[method] = _MethodRules(
                    top=max(r.ratio for r in rules),
                    rules=rules,
                    stream=method in contract.STREAMING,
                    types=(
                        protobuf_type(request.DESCRIPTOR.full_name),
                        protobuf_type(response.DESCRIPTOR.full_name),
                    ),
                )
        self._max_payload = settings.max_payload_bytes
        self._by_method = by_method

    async def __call__(self, call: Call, next: Next) -> Outcome:
        rules = self._by_method.get(call.method)
        if rules is None or self._rng() >= rules.top:
            return await next(call)
        exchange = observable(call.exchange)
        if exchange is not None:
            exchange.observe(_CallCapture(self, rules, call, exchange).on_message)
        return await next(call)


def _model_of(data: bytes, offset: int) -> str:
    """Field 1 of the request (oip/model_name.py), from a message or a gRPC frame; "" if unread."""
    return (from_grpc_frame(data) if offset else from_message(data)) or ""


def _all_json(from_client: bool) -> int:
    return -1


def _given_id(call: Call) -> str:
    for key, value in call.metadata:
        if key == "ce-id" and isinstance(value, str):
            return value[:200]
    return ""


class _CallCapture:
    """One drawn call: decides its rule at the first request message, then records each message."""

    __slots__ = ("_f", "_ids", "_json", "_json_length", "_metadata", "_model", "_offset", "_rule", "_rules",
                 "_seq", "_undecided")  # fmt: skip

    def __init__(self, f: CaptureFilter, rules: _MethodRules, call: Call, exchange: Observable) -> None:
        self._f = f
        self._rules = rules
        self._rule: CaptureRule | None = None
        self._undecided = True
        self._ids = CallIds(_given_id(call), next(f._numbers))
        self._metadata = list(call.metadata)
        self._offset = exchange.message_offset
        self._json = exchange.message_format == JSON
        # A REST exchange says how much of a body is JSON when binary tensors follow it.
        self._json_length: Callable[[bool], int] = getattr(exchange, "json_length", _all_json)
        self._model = call.model
        self._seq = [0, 0] if rules.stream else None

    def on_message(self, from_client: bool, data: bytes) -> None:
        if self._undecided:
            self._undecided = False
            model = self._model or ("" if self._json else _model_of(data, self._offset))
            self._rule = self._decide(model)
        rule = self._rule
        if rule is None or not (rule.requests if from_client else rule.responses):
            return
        f = self._f
        size = len(data) - self._offset
        if size > f._max_payload:
            data = data[: self._offset + f._max_payload]
            f.truncated += 1
        seq = -1
        if self._seq is not None:
            seq = self._seq[from_client]
            self._seq[from_client] = seq + 1
        json_length = -1
        if self._json:
            json_length = self._json_length(from_client)
            content_type = JSON_TYPE if json_length < 0 else BINARY_REST
        else:
            content_type = self._rules.types[0 if from_client else 1]
        f._put(
            Captured(
                self._ids, from_client, data, self._offset, content_type, f._wall(), self._metadata,
                rule.redaction, seq, size, json_length,
            )
        )  # fmt: skip

    def _decide(self, model: str) -> CaptureRule | None:
        rules = self._rules
        for rule in rules.rules:
            if rule.matches(model):
                # The first draw was against the top ratio; this one makes the rule's own hold.
                if rule.ratio < rules.top and self._f._rng() * rules.top >= rule.ratio:
                    return None
                return rule
        return None
