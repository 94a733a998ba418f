"""The ai-sidecar demo: the digits model behind a sidecar, called over gRPC and REST with real digit images.

Starts examples/python/digits_server.py and `ai-sidecar run` as processes on
free loopback ports, sends all 1,797 images of scikit-learn's digits data set
through the sidecar (gRPC passthrough and the OIP REST binding), checks both
agree with a direct call to the model, prints a few predictions and the
accuracy, and stops everything with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request

import grpc.aio
import numpy as np
from sklearn.datasets import load_digits

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from local_stack import HOST, running, start_model, start_sidecar

BATCH = 64


def infer_request(images: np.ndarray) -> pb.ModelInferRequest:
    x = images.astype("<f4")
    return pb.ModelInferRequest(
        model_name="digits",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0", datatype="FP32", shape=list(x.shape)
            )
        ],
        raw_input_contents=[x.tobytes()],
    )


def labels_of(resp: pb.ModelInferResponse) -> np.ndarray:
    names = [o.name for o in resp.outputs]
    return np.frombuffer(resp.raw_output_contents[names.index("LABEL")], dtype="<i8")


async def classify_grpc(port: int, images: np.ndarray) -> np.ndarray:
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        batches = [images[i : i + BATCH] for i in range(0, len(images), BATCH)]
        responses = await asyncio.gather(*(stub.ModelInfer(infer_request(b)) for b in batches))
    return np.concatenate([labels_of(r) for r in responses])


def classify_rest(port: int, images: np.ndarray) -> np.ndarray:
    labels: list[int] = []
    for i in range(0, len(images), BATCH):
        batch = images[i : i + BATCH]
        body = {
            "inputs": [
                {
                    "name": "INPUT0",
                    "datatype": "FP32",
                    "shape": list(batch.shape),
                    "data": batch.astype(float).ravel().tolist(),
                }
            ],
            "outputs": [{"name": "LABEL"}],
        }
        req = urllib.request.Request(
            f"http://{HOST}:{port}/v2/models/digits/infer",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.load(r)["outputs"]
        labels.extend(next(o for o in out if o["name"] == "LABEL")["data"])
    return np.array(labels, dtype=np.int64)


def show(image: np.ndarray, predicted: int, actual: int) -> str:
    shades = " .:-=+*#%@"
    rows = [
        "".join(shades[min(9, int(v) * 10 // 17)] * 2 for v in row) for row in image.reshape(8, 8)
    ]
    mark = "ok" if predicted == actual else "WRONG"
    return "\n".join(rows) + f"\n  -> predicted {predicted}, actual {actual} ({mark})"


def main() -> int:
    digits = load_digits()
    images, truth = digits.data.astype(np.float32), digits.target
    print(f"digits data set: {len(images)} images of 8x8 pixels")
    with running(start_model()) as model, running(start_sidecar(model.ports["grpc"])) as sidecar:
        print(
            f"model on {HOST}:{model.ports['grpc']}, sidecar gRPC {HOST}:{sidecar.ports['grpc']}"
            f" and HTTP {HOST}:{sidecar.ports['http']}"
        )
        t0 = time.perf_counter()
        direct = asyncio.run(classify_grpc(model.ports["grpc"], images))
        t1 = time.perf_counter()
        via_grpc = asyncio.run(classify_grpc(sidecar.ports["grpc"], images))
        t2 = time.perf_counter()
        via_rest = classify_rest(sidecar.ports["http"], images)
        t3 = time.perf_counter()
        for i in (0, 1, 2):
            print(show(images[i], int(via_grpc[i]), int(truth[i])))
        for name, labels, secs in (
            ("direct gRPC", direct, t1 - t0),
            ("sidecar gRPC", via_grpc, t2 - t1),
            ("sidecar REST", via_rest, t3 - t2),
        ):
            accuracy = float(np.mean(labels == truth))
            print(
                f"{name:13s} accuracy {accuracy:.4f} on {len(labels)} images ({secs * 1000:.0f} ms)"
            )
        agree = bool(np.array_equal(direct, via_grpc) and np.array_equal(direct, via_rest))
        print("sidecar gRPC and REST agree with the direct call:", "yes" if agree else "NO")
        code = sidecar.stop()
        print(f"sidecar stopped with exit code {code}")
    return 0 if agree and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
