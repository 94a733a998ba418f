"""A client that calls digits models by service name through its own sidecar's egress.

Knows the services only by name and the sidecar only by its two loopback egress ports: gRPC on
15001 with the target in `x-sidecar-target` metadata, HTTP on 15080 as /{service}/{path}. Which
instance answers (Eureka, balancing, retries) is the sidecar's business. compose.yaml runs it
beside its sidecar; it prints one JSON line per call:

    python examples/python/egress_client.py --service digits-python --service digits-php --once
    {"service": "digits-python", "protocol": "grpc", "ok": true, "label": 0, "ms": 4.1}

Without --once it calls every service every --interval seconds until SIGTERM (exit 0). With --once
it makes one round and exits 0 when every call gave the expected label, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

TARGET_KEY = "x-sidecar-target"
MODEL = "digits"
# The first image of scikit-learn's digits data set (label 0), as in the README.
ZERO = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
    0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
]  # fmt: skip
EXPECTED_LABEL = 0


def grpc_call(channel: grpc.Channel, service: str, timeout: float) -> int:
    """ModelInfer on `service` through the gRPC egress; the LABEL it answers."""
    request = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0",
                datatype="FP32",
                shape=[1, len(ZERO)],
                contents=pb.InferTensorContents(fp32_contents=[float(v) for v in ZERO]),
            )
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="LABEL")],
    )
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    reply: pb.ModelInferResponse = stub.ModelInfer(
        request, timeout=timeout, metadata=((TARGET_KEY, service),)
    )
    # OIP allows either form in an answer: typed contents, or raw little-endian bytes (the form the
    # sidecar's REST-to-gRPC transcoding gives, e.g. for the PHP model).
    if reply.raw_output_contents:
        return int(struct.unpack_from("<q", reply.raw_output_contents[0])[0])
    return int(reply.outputs[0].contents.int64_contents[0])


def rest_call(http: str, service: str, timeout: float) -> int:
    """POST /v2/models/digits/infer on `service` through the HTTP egress; the LABEL it answers."""
    body = {
        "inputs": [{"name": "INPUT0", "shape": [1, len(ZERO)], "datatype": "FP32", "data": ZERO}],
        "outputs": [{"name": "LABEL"}],
    }
    request = urllib.request.Request(
        f"http://{http}/{service}/v2/models/{MODEL}/infer",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer: dict[str, Any] = json.load(response)
    return int(answer["outputs"][0]["data"][0])


def one_call(protocol: str, service: str, args: argparse.Namespace, channel: grpc.Channel) -> bool:
    start = time.perf_counter()
    line: dict[str, object] = {"service": service, "protocol": protocol}
    try:
        if protocol == "grpc":
            label = grpc_call(channel, service, args.timeout)
        else:
            label = rest_call(args.http, service, args.timeout)
    except grpc.RpcError as e:
        line.update(ok=False, error=f"{e.code().name}: {e.details()}")
    except urllib.error.HTTPError as e:
        line.update(ok=False, error=f"HTTP {e.code}: {e.read().decode(errors='replace')}")
    except (OSError, ValueError, KeyError, IndexError) as e:
        line.update(ok=False, error=f"{type(e).__name__}: {e}")
    else:
        line.update(ok=label == EXPECTED_LABEL, label=label)
    line["ms"] = round((time.perf_counter() - start) * 1000, 1)
    print(json.dumps(line), flush=True)
    return bool(line["ok"])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--service", action="append", required=True, help="service name; repeat")
    parser.add_argument("--grpc", default="127.0.0.1:15001", help="the sidecar's gRPC egress")
    parser.add_argument("--http", default="127.0.0.1:15080", help="the sidecar's HTTP egress")
    parser.add_argument("--protocol", choices=["grpc", "rest", "both"], default="both")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline of each call, seconds")
    parser.add_argument("--once", action="store_true", help="one round; exit 1 if any call failed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    protocols = ["grpc", "rest"] if args.protocol == "both" else [args.protocol]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with grpc.insecure_channel(args.grpc) as channel:
        while True:
            results = [one_call(p, s, args, channel) for s in args.service for p in protocols]
            if args.once:
                return 0 if all(results) else 1
            if stop.wait(args.interval):
                return 0


if __name__ == "__main__":
    sys.exit(main())
