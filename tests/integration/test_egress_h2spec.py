"""h2spec against the gRPC egress proxy: it terminates HTTP/2 itself, so the protocol's rules are its own.

Every request h2spec sends names no service (its :authority is an address), so each is answered
by the proxy alone (trailers-only INVALID_ARGUMENT), with no upstream. The test fails on a crash,
a hang, or any failing case beyond the known ones below.
"""

from __future__ import annotations

import pytest

from tests.support import h2spec
from tests.support.procs import running, start_model, start_sidecar

pytestmark = pytest.mark.integration

# Not yet looked into case by case but the last two; the likely cause for the rest is that the proxy
# answers h2spec's request (trailers-only, at once) and forgets the stream before h2spec's next frame.
KNOWN = {
    "generic/2/2": "WINDOW_UPDATE on a half-closed (remote) stream (likely: stream answered already)",
    "generic/2/3": "PRIORITY on a half-closed (remote) stream (likely: as generic/2/2)",
    "http2/5.1.2/1": "the advertised concurrent stream limit exceeded (likely: streams answered at once)",
    "http2/6.9.1/3": "a stream window overflowed by WINDOW_UPDATE (likely: stream answered already)",
    "http2/8.1/1": "a second HEADERS without END_STREAM (likely: stream answered and reset already)",
    "http2/8.1.2.1/3": "pseudo-header fields in trailers (likely: as http2/8.1/1)",
    "http2/8.1.2.6/1": "content-length is not checked against DATA (gRPC does not send it)",
    "http2/8.1.2.6/2": "as http2/8.1.2.6/1",
}


def test_h2spec_finds_no_crash_no_hang_and_no_failure_beyond_the_known_ones():
    if h2spec.binary() is None:
        pytest.fail("h2spec is not built: run scripts/setup-h2spec.sh")
    with running(start_model()) as model, running(start_sidecar(model.ports["grpc"])) as sidecar:
        report = h2spec.run({"egress": sidecar.ports["egress_grpc"]}, limit=90)["egress"]
        log = sidecar.log()
    failed = {case for case, r in report.items() if r.verdict is h2spec.Verdict.FAILED}
    passed = h2spec.passed(report)
    print(f"h2spec on the egress proxy: {passed} of {len(report)} passed; failed:", sorted(failed))
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert failed <= set(KNOWN), sorted(failed - set(KNOWN))
    assert passed >= 130
