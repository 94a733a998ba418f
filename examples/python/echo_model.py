"""The "echo" model: BYTES in, the same BYTES and their lengths out. Knows nothing about gRPC servers.

It exists so that a BYTES tensor can be checked end to end (the conformance kit, the sidecar's
REST binding and its binary extension): input TEXT BYTES [-1]; outputs ECHO BYTES [-1], each
element as it came, and LENGTH INT64 [-1], each element's length in bytes. Elements are bytes,
not text: anything, NUL and invalid UTF-8 included. A request in raw_input_contents is
answered in raw_output_contents, one in typed contents in typed contents.
"""

from __future__ import annotations

import struct

import grpc

from inference import grpc_service_pb2 as pb

MODEL = "echo"
VERSION = "1"
INPUT = "TEXT"
ECHO = "ECHO"
LENGTH = "LENGTH"
OUTPUTS = (ECHO, LENGTH)


class EchoError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> EchoError:
    return EchoError(grpc.StatusCode.INVALID_ARGUMENT, f'model "{MODEL}": {message}')


def check_version(version: str) -> None:
    if version not in ("", VERSION):
        raise EchoError(
            grpc.StatusCode.NOT_FOUND,
            f'model "{MODEL}" has no version "{version}"; its only version is "{VERSION}"',
        )


def metadata() -> pb.ModelMetadataResponse:
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=MODEL,
        versions=[VERSION],
        platform="python",
        inputs=[tensor(name=INPUT, datatype="BYTES", shape=[-1])],
        outputs=[
            tensor(name=ECHO, datatype="BYTES", shape=[-1]),
            tensor(name=LENGTH, datatype="INT64", shape=[-1]),
        ],
    )


def _split(raw: bytes) -> list[bytes]:
    items: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise _invalid(f'input "{INPUT}": raw BYTES end inside a length prefix at byte {pos}')
        n = int.from_bytes(raw[pos : pos + 4], "little")
        pos += 4
        if pos + n > len(raw):
            raise _invalid(f'input "{INPUT}": raw BYTES element {len(items)} overruns the buffer')
        items.append(raw[pos : pos + n])
        pos += n
    return items


def decode(request: pb.ModelInferRequest) -> tuple[list[bytes], bool]:
    """The elements of TEXT, and whether they came as raw_input_contents."""
    if [t.name for t in request.inputs] != [INPUT]:
        got = ", ".join(f'"{t.name}"' for t in request.inputs) or "none"
        raise _invalid(f'expects one input "{INPUT}", got {got}')
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise _invalid(f'input "{INPUT}" is BYTES, got {tensor.datatype}')
    if len(tensor.shape) != 1:
        raise _invalid(f'input "{INPUT}" has shape {list(tensor.shape)}, model expects [-1]')
    raw = bool(request.raw_input_contents)
    if raw and tensor.contents.ListFields():
        raise _invalid(f'input "{INPUT}" has both typed contents and raw_input_contents')
    items = _split(request.raw_input_contents[0]) if raw else list(tensor.contents.bytes_contents)
    if len(items) != tensor.shape[0]:
        raise _invalid(f'input "{INPUT}" has shape [{tensor.shape[0]}] but {len(items)} elements')
    return items, raw


def infer(request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """Raises EchoError (INVALID_ARGUMENT) naming what is wrong with the request."""
    items, raw = decode(request)
    names = [o.name for o in request.outputs] or list(OUTPUTS)
    for name in names:
        if name not in OUTPUTS or names.count(name) > 1:
            raise _invalid(f'output "{name}" is unknown or asked twice; outputs are "{ECHO}", "{LENGTH}"')
    response = pb.ModelInferResponse(model_name=MODEL, model_version=VERSION, id=request.id)
    lengths = [len(item) for item in items]
    for name in names:
        datatype = "BYTES" if name == ECHO else "INT64"
        out = response.outputs.add(name=name, datatype=datatype, shape=[len(items)])
        if raw:
            response.raw_output_contents.append(
                b"".join(len(i).to_bytes(4, "little") + i for i in items)
                if name == ECHO
                else struct.pack(f"<{len(lengths)}q", *lengths)
            )
        elif name == ECHO:
            out.contents.bytes_contents.extend(items)
        else:
            out.contents.int64_contents.extend(lengths)
    return response
