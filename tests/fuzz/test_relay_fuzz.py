"""Fuzz the relay data plane: random and mutated HTTP/2 streams from clients and from the model.

For a fixed budget each test feeds generated cases to in-process relays over real sockets and
checks, per exchange: no sidecar ERROR record, log call that cannot format or error only asyncio
saw; the relay reads on, closes on the client's FIN, lets go of every task within LET_GO_S of the
client closing, never blocks its loop for BLOCKED_S, peaks under PEAK_PER_EXCHANGE; and per run:
no task, socket or in-flight call left, retained memory growth under RETAINED_GROWTH, real calls
still served (see harness.py).

Deterministic by default (derandomized, no example database): SIDECAR_FUZZ_EXAMPLES (per test;
default 300, 300, 100) raises the budget for a long local run, SIDECAR_FUZZ_SEED=N explores others:
  SIDECAR_FUZZ_EXAMPLES=5000 SIDECAR_FUZZ_SEED=$RANDOM python3 -m pytest tests/fuzz -o timeout=0
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
from collections.abc import Callable, Iterator

import pytest
import uvloop
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import streams as s
from tests.fuzz.harness import Case, Harness

pytestmark = pytest.mark.integration

EXAMPLES = os.environ.get("SIDECAR_FUZZ_EXAMPLES")
SEED = os.environ.get("SIDECAR_FUZZ_SEED")

# The CI budget (~31 s in all on 2 cores): a scripted-model case takes ~0.1 s, the others ~0.03 s.
CLIENT_EXAMPLES, MUTATED_EXAMPLES, MODEL_EXAMPLES = 300, 300, 100
# Cases of each run replayed at its end to measure what the relay retains.
REPLAYED = 24
ENDINGS = st.sampled_from(["eof", "linger", "abort"])
# Seconds a call waits in a filter on the scripted model's relay, so that the model's frames can
# arrive while a call is still in the filter chain.
PAUSES = st.sampled_from([0.0, 0.0, 0.02])


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A budget of `examples` cases (or SIDECAR_FUZZ_EXAMPLES), no deadline, the same cases every run."""
    budget = settings(
        max_examples=int(EXAMPLES) if EXAMPLES else examples,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
    )
    return lambda test: budget(seed(int(SEED))(test)) if SEED is not None else budget(test)


class Run:
    """A Hypothesis run against the harness; keeps a fixed-size sample of its cases to replay at the end."""

    def __init__(self, runner: asyncio.Runner, harness: Harness) -> None:
        self.runner = runner
        self.harness = harness
        self.examples = 0
        self.sample: list[Case] = []
        self._rng = random.Random(0)

    def __call__(self, case: Case) -> None:
        self.runner.run(self.harness.exchange(case))
        self.examples += 1
        # Reservoir sampling: every case of the run equally likely to be replayed.
        if len(self.sample) < REPLAYED:
            self.sample.append(case)
        elif (i := self._rng.randrange(self.examples)) < REPLAYED:
            self.sample[i] = case


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, Harness]]:
    # uvloop, as the sidecar's CLI runs the relay.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        h = Harness(pathlib.Path(tmp_path_factory.mktemp("fuzz")))
        runner.run(h.start())
        try:
            yield runner, h
        finally:
            runner.run(h.stop())


@pytest.fixture
def run(harness: tuple[asyncio.Runner, Harness]) -> Iterator[Run]:
    runner, h = harness
    runner.run(h.begin())
    r = Run(runner, h)
    yield r
    runner.run(h.finish(r.sample))
    print(f"{r.examples} exchanges; peak {h.peak >> 10} KiB per exchange; {h.retained} B retained")


def test_random_client_streams(run: Run) -> None:
    @fuzz(CLIENT_EXAMPLES)
    @given(target=st.sampled_from(["model", "down"]), ending=ENDINGS, draw=st.data())
    def exchange(target: str, ending: str, draw: st.DataObject) -> None:
        data = draw.draw(s.client_bytes(utf8_paths=target == "model"))
        run(Case(target, tuple(draw.draw(s.cuts(data))), ending))

    exchange()


def test_mutated_grpcio_sessions(run: Run) -> None:
    session = run.runner.run(run.harness.record_session())
    assert session.startswith(s.PREFACE)

    @fuzz(MUTATED_EXAMPLES)
    @given(target=st.sampled_from(["model", "down"]), ending=ENDINGS, draw=st.data())
    def exchange(target: str, ending: str, draw: st.DataObject) -> None:
        data = draw.draw(s.mutated(session))
        run(Case(target, tuple(draw.draw(s.cuts(data))), ending))

    exchange()


def test_random_model_streams(run: Run) -> None:
    @fuzz(MODEL_EXAMPLES)
    @given(
        session=s.client_session(),
        script=s.model_bytes([1, 3, 5, 7, 9]),
        closes=st.booleans(),
        pause=PAUSES,
        ending=ENDINGS,
    )
    def exchange(
        session: tuple[bytes, bytes], script: tuple[bytes, bytes], closes: bool, pause: float, ending: str
    ) -> None:
        run(Case("scripted", session, ending, script, model_closes=closes, pause=pause, paced=True))

    exchange()
