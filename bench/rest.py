"""The REST binding's cost: sidecar CPU per REST call, JSON and binary, against gRPC relay and MLServer.

For 64 FP32 elements (one digit) and about 10^5 (1,563 digits, 100,032 elements), measures in one
run, per target, the CPU time the serving process tree used over a window of sequential calls,
divided by the calls:
- rest-json: a REST caller sending JSON and reading JSON, through ai-sidecar to the digits model;
- rest-binary: the same with Triton's binary extension both ways (what tritonclient sends);
- grpc-relay: the same tensors as raw_input_contents through the sidecar's relay data plane;
- mlserver-json: MLServer's own REST endpoint serving the same DigitsModel (a custom runtime),
  JSON both ways. Its figure includes the model's compute, since model and server share a
  process; the digits model's own CPU per call (measured behind the sidecar) is printed beside
  it, so the two can be compared.
The client is this process, one keep-alive connection, calls one after another (closed loop:
CPU per call is what is asked, not latency under load). Medians of --repeat windows.

    bash bench/setup-mlserver.sh    # MLServer in its own venv, once
    python bench/rest.py            # figures for docs/benchmarks.md
    python bench/rest.py --repeat 1 --calls-small 200 --calls-large 20 --no-mlserver
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "examples" / "python"))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import procstat  # noqa: E402

from inference import grpc_service_pb2 as pb  # noqa: E402
from local_stack import HOST, Proc, free_port, running, start_model, start_sidecar  # noqa: E402

MLSERVER_VENV = BENCH / ".venv-mlserver"
RESULTS = BENCH / "results"
SIZES = {"64": 1, "1e5": 1563}  # rows of 64 FP32 features
TARGETS = ("rest-json", "rest-binary", "grpc-relay", "mlserver-json")


@dataclass(frozen=True)
class Payload:
    rows: int
    json_body: bytes
    binary_body: bytes
    binary_header: int
    grpc_body: bytes


def payload(rows: int) -> Payload:
    rng = np.random.default_rng(7)
    x = (rng.random((rows, 64), dtype=np.float32) * 16).astype("<f4")
    tensor = {"name": "INPUT0", "shape": [rows, 64], "datatype": "FP32"}
    json_body = json.dumps({"inputs": [{**tensor, "data": x.ravel().tolist()}]}).encode()
    header = json.dumps(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": x.nbytes}}],
         "parameters": {"binary_data_output": True}}
    ).encode()
    grpc_req = pb.ModelInferRequest(
        model_name="digits",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[rows, 64])],
        raw_input_contents=[x.tobytes()],
    )
    return Payload(rows, json_body, header + x.tobytes(), len(header), grpc_req.SerializeToString())


class RestCaller:
    def __init__(self, port: int, path: str = "/v2/models/digits/infer") -> None:
        self._host, self._port = HOST, port
        self._conn = http.client.HTTPConnection(HOST, port, timeout=60)
        self._path = path

    def __call__(self, body: bytes, header: int | None = None) -> None:
        try:
            self._call(body, header)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed an idle keep-alive connection (uvicorn does after 5 s): reconnect.
            self._conn.close()
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
            self._call(body, header)

    def _call(self, body: bytes, header: int | None) -> None:
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers = {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(header),
            }
        self._conn.request("POST", self._path, body, headers)
        response = self._conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"{self._path}: HTTP {response.status}: {answer[:300]!r}")

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def mlserver(weights: pathlib.Path) -> Iterator[Proc]:
    """MLServer on a free loopback port serving the digits runtime, in its own venv."""
    binary = MLSERVER_VENV / "bin" / "mlserver"
    if not binary.exists():
        raise SystemExit("no MLServer: run bash bench/setup-mlserver.sh (or pass --no-mlserver)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="mlserver-digits-"))
    model_dir = work / "digits"
    model_dir.mkdir()
    shutil.copy(BENCH / "mlserver_digits" / "digits_runtime.py", model_dir)
    shutil.copy(REPO / "examples" / "python" / "digits_model.py", model_dir)
    (model_dir / "model-settings.json").write_text(
        json.dumps({"name": "digits", "implementation": "digits_runtime.DigitsRuntime"})
    )
    http_port, grpc_port = free_port(), free_port()
    (work / "settings.json").write_text(json.dumps({
        "host": HOST, "http_port": http_port, "grpc_port": grpc_port, "metrics_endpoint": None,
        "parallel_workers": 0, "debug": False,
    }))
    env = {**os.environ, "DIGITS_WEIGHTS": str(REPO / "examples" / "digits" / "weights.json"),
           "PYTHONPATH": str(model_dir)}
    log = (work / "mlserver.log").open("wb")
    popen = subprocess.Popen([str(binary), "start", str(work)], stdout=log, stderr=log, env=env, cwd=work)
    proc = Proc(popen, work / "mlserver.log", {"http": http_port})
    try:
        deadline = time.monotonic() + 120
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"mlserver exited:\n{proc.log()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(HOST, http_port, timeout=2)
                conn.request("GET", "/v2/models/digits/ready")
                if conn.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlserver not ready:\n{proc.log()}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.stop()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


IDLE_S = 1.0


def measure(pids: dict[str, int], call: Callable[[], None], calls: int) -> dict[str, float]:
    """CPU microseconds per call of each tree over `calls` sequential calls, after a warm-up, net
    of the tree's background CPU (probes, timers) over the same wall time, measured idle just before."""
    for _ in range(max(3, calls // 10)):
        call()
    idle = procstat.Window(pids)
    idle.start()
    time.sleep(IDLE_S)
    background = {name: u.cpu_s / IDLE_S for name, u in idle.stop().items()}
    window = procstat.Window(pids)
    window.start()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    wall = time.perf_counter() - started
    usage = window.stop()
    out = {name: max(0.0, u.cpu_s - background[name] * wall) / calls * 1e6 for name, u in usage.items()}
    out |= {f"{name}_raw": u.cpu_s / calls * 1e6 for name, u in usage.items()}
    out["wall_us"] = wall / calls * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls-small", type=int, default=2000, help="calls per window, 64 elements")
    parser.add_argument("--calls-large", type=int, default=150, help="calls per window, 10^5 elements")
    parser.add_argument("--no-mlserver", action="store_true")
    args = parser.parse_args(argv)
    payloads = {name: payload(rows) for name, rows in SIZES.items()}
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with contextlib.ExitStack() as stack:
        model = stack.enter_context(running(start_model()))
        flags = ("--dataplane", "relay", "--max-message-bytes", str(64 << 20), "--probe-interval", "5")
        sidecar = stack.enter_context(running(start_sidecar(model.ports["grpc"], *flags)))
        peer = None if args.no_mlserver else stack.enter_context(mlserver(REPO / "examples" / "digits"))
        rest = RestCaller(sidecar.ports["http"])
        stack.callback(rest.close)
        channel = stack.enter_context(grpc.insecure_channel(
            f"{HOST}:{sidecar.ports['grpc']}", options=[("grpc.max_receive_message_length", 64 << 20),
                                                        ("grpc.max_send_message_length", 64 << 20)]))
        grpc_infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        peer_rest = RestCaller(peer.ports["http"]) if peer else None
        pids = {"sidecar": sidecar.popen.pid, "model": model.popen.pid}
        for repeat in range(args.repeat):
            for size, p in payloads.items():
                calls = args.calls_small if size == "64" else args.calls_large
                targets: dict[str, tuple[dict[str, int], Callable[[], None]]] = {
                    "rest-json": (pids, _bind(rest, p.json_body)),
                    "rest-binary": (pids, _bind(rest, p.binary_body, p.binary_header)),
                    "grpc-relay": (pids, _bind(grpc_infer, p.grpc_body, timeout=60)),
                }
                if peer is not None and peer_rest is not None:
                    targets["mlserver-json"] = ({"mlserver": peer.popen.pid}, _bind(peer_rest, p.json_body))
                order = list(targets)
                order = order[repeat % len(order):] + order[: repeat % len(order)]
                for name in order:
                    tree, call = targets[name]
                    got = measure(tree, call, calls)
                    results.setdefault(size, {}).setdefault(name, []).append(got)
                    print(f"repeat {repeat} {size:>4} {name:<14} " + " ".join(
                        f"{k}={v:.0f}" for k, v in got.items()), flush=True)
    report(results, args)
    return 0


def _bind(f: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], None]:
    def call() -> None:
        f(*args, **kwargs)

    return call


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs if key in r)


def report(results: dict[str, dict[str, list[dict[str, float]]]], args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"rest-{stamp}.json").write_text(json.dumps(
        {"machine": platform.platform(), "cpus": os.cpu_count(), "args": vars(args), "runs": results},
        indent=1))
    print(f"\nmedians of {args.repeat} windows; CPU µs per call net of background (wall µs per call)\n")
    print("| elements | target | sidecar CPU | model CPU | MLServer CPU (server + model) | wall |")
    print("|---|---|---|---|---|---|")
    for size, targets in results.items():
        for name, runs in targets.items():
            keys = ("sidecar", "model", "mlserver")
            cells = [median(runs, k) if any(k in r for r in runs) else None for k in keys]
            shown = ["" if v is None else f"{v:,.0f}" for v in cells]
            print(f"| {'64' if size == '64' else '100,032'} | {name} | {' | '.join(shown)} | "
                  f"{median(runs, 'wall_us'):,.0f} |")


if __name__ == "__main__":
    raise SystemExit(main())
