"""The sidecar as a REST client of an OIP v2 model: protobuf requests as REST bodies, answers as protobuf.

The mirror of json_codec (which serves REST callers). A request's inputs and a
response's outputs share one JSON tensor shape, so each direction reuses the
other's tensor code; only the blame changes: a bad client request is
INVALID_ARGUMENT, a bad answer from the model is INTERNAL. A model that lists Triton's
``binary_tensor_data`` extension gets every input as raw bytes after the JSON header and is asked
for every output so (binary_tensors.py); its answer may mix binary and JSON outputs. No I/O.
"""

from __future__ import annotations

from typing import Any

import inference.grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.oip import binary_tensors
from sidecar.oip.binary_tensors import BINARY_DATA_OUTPUT, RestBody
from sidecar.oip.json_codec import (
    NO_BINARY_DATA,
    BinaryData,
    infer_request_from_json,
    infer_response_to_parts,
    parameters_from_json,
    parameters_to_json,
)


def infer_request_to_json(req: pb.ModelInferRequest) -> dict[str, object]:
    """A ModelInferRequest as an OIP REST inference body (data flat)."""
    return _request_parts(req, binary=False)[0]


def infer_request_to_rest(req: pb.ModelInferRequest, *, binary: bool) -> RestBody:
    """A ModelInferRequest as a REST body: all JSON, or every tensor binary both ways."""
    body, binaries = _request_parts(req, binary=binary)
    if binary:
        params = body.setdefault("parameters", {})
        assert isinstance(params, dict)
        params[BINARY_DATA_OUTPUT] = True
    return binary_tensors.join(body, binaries)


def infer_response_from_rest(rest: RestBody) -> pb.ModelInferResponse:
    """The model's REST inference answer, JSON or with binary outputs, as a ModelInferResponse."""
    try:
        header, binary, finish = binary_tensors.split_answer(rest)
    except SidecarError as e:
        raise _model_error(e.message) from None
    resp = infer_response_from_json(header, binary)
    try:
        finish()
    except SidecarError as e:
        raise _model_error(e.message) from None
    return resp


def _request_parts(req: pb.ModelInferRequest, *, binary: bool) -> tuple[dict[str, object], list[bytes]]:
    as_outputs = pb.ModelInferResponse(
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name=t.name, datatype=t.datatype, shape=t.shape, parameters=t.parameters, contents=t.contents
            )
            for t in req.inputs
        ],
        raw_output_contents=req.raw_input_contents,
    )
    try:
        header, binaries = infer_response_to_parts(as_outputs, lambda _: binary)
        tensors = header["outputs"]
    except SidecarError as e:
        message = "ModelInfer: " + e.message.replace("output", "input")
        if e.code is Code.UNIMPLEMENTED:  # what JSON cannot carry, on its way to the model
            message = message.replace(" (use the gRPC endpoint)", "") + (
                "; the model speaks REST without binary_tensor_data, so it can be sent JSON only"
            )
        raise SidecarError(Code.INVALID_ARGUMENT if e.code is Code.INTERNAL else e.code, message) from None
    body: dict[str, object] = {"inputs": tensors}
    if req.id:
        body["id"] = req.id
    if req.parameters:
        body["parameters"] = parameters_to_json(req.parameters)
    if req.outputs:
        body["outputs"] = [
            {"name": o.name, **({"parameters": parameters_to_json(o.parameters)} if o.parameters else {})}
            for o in req.outputs
        ]
    return body, binaries


def infer_response_from_json(body: Any, binary: BinaryData = NO_BINARY_DATA) -> pb.ModelInferResponse:
    """The model's OIP REST inference answer as a ModelInferResponse, tensors as raw contents."""
    if not isinstance(body, dict):
        raise _model_error("the answer is not a JSON object")
    try:
        as_request = infer_request_from_json(
            {"inputs": body.get("outputs", []), **({"id": body["id"]} if "id" in body else {})},
            str(body.get("model_name", "")),
            str(body.get("model_version", "")),
            binary,
        )
    except SidecarError as e:
        raise _model_error(e.message.replace("inputs", "outputs")) from None
    resp = pb.ModelInferResponse(
        model_name=as_request.model_name,
        model_version=as_request.model_version,
        id=as_request.id,
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name=t.name, datatype=t.datatype, shape=t.shape, parameters=t.parameters
            )
            for t in as_request.inputs
        ],
        raw_output_contents=as_request.raw_input_contents,
    )
    if "parameters" in body:
        try:
            parameters_from_json(body["parameters"], resp.parameters)
        except SidecarError as e:
            raise _model_error(e.message) from None
    return resp


def server_metadata_from_json(body: Any) -> pb.ServerMetadataResponse:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise _model_error('server metadata needs a "name" string')
    return pb.ServerMetadataResponse(
        name=body["name"],
        version=str(body.get("version", "")),
        extensions=[str(x) for x in body.get("extensions", []) or []],
    )


def model_metadata_from_json(body: Any) -> pb.ModelMetadataResponse:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise _model_error('model metadata needs a "name" string')
    try:
        return pb.ModelMetadataResponse(
            name=body["name"],
            versions=[str(v) for v in body.get("versions", []) or []],
            platform=str(body.get("platform", "")),
            inputs=[_tensor_meta(t) for t in body.get("inputs", []) or []],
            outputs=[_tensor_meta(t) for t in body.get("outputs", []) or []],
        )
    except (TypeError, ValueError, KeyError) as e:
        raise _model_error(f"model metadata: {e}") from None


def _tensor_meta(t: Any) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=str(t["name"]), datatype=str(t["datatype"]), shape=[int(d) for d in t["shape"]]
    )


def _model_error(message: str) -> SidecarError:
    return SidecarError(Code.INTERNAL, f"the model's REST answer is not valid OIP: {message}")
