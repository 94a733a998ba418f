"""The compiled twins fuzzed against their pure modules with atheris: same results, no crash, no bad read.

Each input drives one twin, chosen by its first byte, with the pure module beside it:
- messages: the rest of the input is a DATA stream (random message prefixes included), cut into
  DATA frames or bare payloads at points the input picks, some padded, each inside a buffer with
  bytes before and after; both builds' MessageBytes and MessageObserver (with a bound the input
  picks) must end in the same state and hand up the same messages;
- grpc_headers: the rest is a header block (names and values from a small vocabulary or raw
  bytes); both builds' `request` and `outcome` must agree: the same value, or the same exception
  type and message.
Any difference raises, and atheris reports the input. Coverage comes from the pure modules
(instrumented Python), which the twins follow statement for statement; out-of-bounds reads in
the C come out under AddressSanitizer (run.sh builds the twins with it). Knows nothing about
frames beyond DATA, or about sockets.

    bash tests/fuzz_native/run.sh 600 messages        # 10 minutes on one twin, sanitized build
    python tests/fuzz_native/fuzz_twins.py -runs=2000 # the in-tree build, as its smoke test does
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pathlib
import sys
from types import ModuleType
from typing import Any

import atheris

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

with atheris.instrument_imports(include=["sidecar.h2.messages", "sidecar.h2.grpc_headers"]):
    from sidecar.h2 import grpc_headers as pure_headers
    from sidecar.h2 import messages as pure_messages

from sidecar.h2 import frames as f  # noqa: E402

# Where run.sh built the sanitized twins (their package layout under it); else the in-tree build.
BUILT = os.environ.get("FUZZ_TWINS_BUILD", "")


def _compiled(name: str) -> ModuleType:
    if not BUILT:
        return importlib.import_module(f"sidecar.h2._{name}")
    (path,) = pathlib.Path(BUILT, "sidecar", "h2").glob(f"_{name}.*.so")
    spec = importlib.util.spec_from_file_location(f"sidecar.h2._{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compiled_messages = _compiled("messages")
compiled_headers = _compiled("grpc_headers")

NAMES = (
    ":method",
    ":scheme",
    ":path",
    ":authority",
    ":status",
    "content-type",
    "te",
    "grpc-timeout",
    "grpc-status",
    "grpc-message",
    "x-a",
    "x-b-bin",
    "connection",
    "host",
    "",
    "X-Up",
)
VALUES = (
    "POST",
    "http",
    "/a/b",
    "/",
    "trailers",
    "1500m",
    "5x",
    "AP8",
    "\x00\x01",
    "bad%20shape",
    "3",
    "0",
    "",
    " x",
    "a\nb",
)
BOUNDS = (0, 1, 5, 10, 300, 1 << 22, -1)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:  # the two builds must fail alike
        return type(e).__name__, str(e)


def _state(counter: Any) -> tuple[int, int, int | None]:
    return counter.total, counter.messages, counter.counted


def fuzz_messages(fdp: atheris.FuzzedDataProvider) -> None:
    bound = BOUNDS[fdp.ConsumeIntInRange(0, len(BOUNDS) - 1)]
    seen: dict[str, list[bytes]] = {"pure": [], "compiled": []}

    def deliver(kind: str) -> Any:
        def take(message: bytes) -> None:
            seen[kind].append(message)
            if len(message) % 7 == 3:
                raise RuntimeError("the layer above failed")  # the state left must agree too

        return take

    pairs = [
        (pure_messages.MessageBytes(), compiled_messages.MessageBytes()),
        (
            pure_messages.MessageObserver(deliver("pure"), bound),
            compiled_messages.MessageObserver(deliver("compiled"), bound),
        ),
    ]
    while fdp.remaining_bytes():
        how = fdp.ConsumeIntInRange(0, 3)
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600))
        before, after = b"\x07" * fdp.ConsumeIntInRange(0, 3), b"\x09" * fdp.ConsumeIntInRange(0, 3)
        if how == 0:
            buf, is_frame = before + chunk + after, False
            start, end = len(before), len(before) + len(chunk)
        else:
            if how == 1:
                pad = fdp.ConsumeIntInRange(0, 255)
                payload, flags = bytes([pad]) + chunk + b"\x00" * min(pad, 4), f.PADDED
            else:
                payload, flags = chunk, f.END_STREAM if how == 3 else 0
            frame = f.frame(f.DATA, flags, 1, payload)
            buf, is_frame = before + frame + after, True
            start, end = len(before), len(before) + len(frame)
        for a, b in pairs:
            results = [_outcome(c.frame if is_frame else c.add, buf, start, end) for c in (a, b)]
            if results[0] != results[1] or _state(a) != _state(b):
                raise AssertionError(f"{type(a).__name__}: {results} {_state(a)} != {_state(b)}")
    if seen["pure"] != seen["compiled"]:
        raise AssertionError(f"handed up {seen['pure']!r} != {seen['compiled']!r}")


def fuzz_headers(fdp: atheris.FuzzedDataProvider) -> None:
    block: list[tuple[str, str]] = []
    if fdp.ConsumeBool():
        block += [(":method", "POST"), (":scheme", "http")]
    for _ in range(fdp.ConsumeIntInRange(0, 10)):
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(6)
        value = (
            VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] if fdp.ConsumeBool() else fdp.ConsumeUnicode(8)
        )
        block.append((name, value))
    memos: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set())
    bound = fdp.ConsumeIntInRange(0, 8)
    a = _outcome(pure_headers.request, block, memos[0], bound)
    b = _outcome(compiled_headers.request, block, memos[1], bound)
    if a[0] == b[0] == "ok":  # deadlines differ by the time between the two calls
        a, b = (("ok", (r[1][0], r[1][1] is None, r[1][2])) for r in (a, b))
    if a != b or memos[0] != memos[1]:
        raise AssertionError(f"request({block!r}): {a!r} != {b!r}")
    a, b = _outcome(pure_headers.outcome, block), _outcome(compiled_headers.outcome, block)
    if a != b:
        raise AssertionError(f"outcome({block!r}): {a!r} != {b!r}")


TWINS = {"messages": fuzz_messages, "grpc_headers": fuzz_headers}
# FUZZ_TWIN names one twin to fuzz alone (run.sh's second argument); both by default.
ONLY = os.environ.get("FUZZ_TWIN", "")


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if ONLY:
        TWINS[ONLY](fdp)
    else:
        (fuzz_messages if fdp.ConsumeBool() else fuzz_headers)(fdp)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
