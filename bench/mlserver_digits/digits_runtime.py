"""The digits model as an MLServer custom runtime, for bench/rest.py: the same DigitsModel the examples serve.

Runs inside MLServer's own virtualenv (bench/setup-mlserver.sh), which puts this folder and
examples/python on sys.path; the sidecar never imports it.
"""

from __future__ import annotations

import os

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from digits_model import DigitsModel


class DigitsRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        self._digits = DigitsModel.load(os.environ["DIGITS_WEIGHTS"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        pixels = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        labels, probabilities = self._digits.predict(pixels)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output("LABEL", labels),
                NumpyCodec.encode_output("PROBABILITIES", probabilities),
            ],
        )
