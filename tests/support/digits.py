"""Digit images and OIP requests for them, shared by the integration tests."""

from __future__ import annotations

import functools

import numpy as np
from sklearn.datasets import load_digits

from inference import grpc_service_pb2 as pb

OIP = "/inference.GRPCInferenceService"


@functools.cache
def images() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64)


def raw_request(x: np.ndarray, **kw: object) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="digits",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0", datatype="FP32", shape=list(x.shape)
            )
        ],
        raw_input_contents=[x.astype("<f4").tobytes()],
        **kw,  # type: ignore[arg-type]
    )


def contents_request(x: np.ndarray) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name="digits",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="INPUT0",
                datatype="FP32",
                shape=list(x.shape),
                contents=pb.InferTensorContents(fp32_contents=x.ravel().tolist()),
            )
        ],
    )
