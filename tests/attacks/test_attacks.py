"""Issue 12's HTTP/2 attack suite: every class in tests/attacks/classes.py against the relay data plane.

Each test starts a sidecar (`--dataplane relay`, its defaults) in front of the real digits model,
runs one attack on loopback for a few seconds while tests/attacks/watch.py calls ModelInfer and
polls readiness on connections of their own, and requires everything issue 12 asks: the sidecar
survives with no traceback logged, its RSS grows by less than 50 MB, the attacker gets the answer
the spec names (docs/http2-conformance.md), legitimate calls succeed within 1 s during and after,
readiness stays READY. Limits are read from the relay's SETTINGS where HTTP/2 advertises them;
the numbers the suite assumes are the knobs at the top of tests/attacks/spec.py, and
SIDECAR_FLAGS below is where a test-only setting would go (none: the defaults are under test).
bench/h2_attacks.py runs the same classes against the grpcio plane and nginx.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.attacks.classes import ATTACKS
from tests.attacks.harness import run
from tests.attacks.spec import Attack
from tests.attacks.targets import Model, sidecar

pytestmark = pytest.mark.integration

# Flags given to every sidecar under attack. Empty: the suite judges the relay's defaults.
SIDECAR_FLAGS: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def models() -> Iterator[Model]:
    keeper = Model()
    try:
        yield keeper
    finally:
        keeper.stop()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_the_relay_holds(attack: Attack, models: Model) -> None:
    with sidecar(models.get(), "relay", *SIDECAR_FLAGS) as (proc, target):
        verdict = run(attack, target)
        log = proc.log()
    problems = [f"{c.name}: {c.detail}" for c in verdict.failures()]
    if "Traceback" in log:
        problems.append("the sidecar logged a traceback:\n" + log[log.index("Traceback") :][:2000])
    assert not problems, verdict.report() + "\n" + "\n".join(problems)
