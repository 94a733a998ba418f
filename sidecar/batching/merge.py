"""Dynamic batching's arithmetic: which ModelInfer requests may share a batch, one request made of many
along the batch dimension, and the reply cut back into each caller's rows. Pure; knows nothing of
queues, time or transports.

Requests merge when everything but their rows is equal: model, version, parameters, each input's
name, datatype, parameters and shape outside the batch dimension, the requested outputs, and the
form the data comes in (raw_input_contents or typed contents, which the model answers in kind).
Tensors are row-major, so concatenating along dimension d is, for each index of the dimensions
before d, the callers' slabs one after another (for d = 0, the callers' bytes end to end).

A request that cannot be batched says why (`PassThrough.reason`), and goes to the model as it is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from inference import grpc_service_pb2 as pb

# Bytes per element of each fixed-size OIP datatype; BYTES has none and never batches.
ELEMENT_SIZE: Final = {
    "BOOL": 1, "INT8": 1, "UINT8": 1, "INT16": 2, "UINT16": 2, "FP16": 2, "BF16": 2,
    "INT32": 4, "UINT32": 4, "FP32": 4, "INT64": 8, "UINT64": 8, "FP64": 8,
}  # fmt: skip
# The InferTensorContents field each datatype's typed values go in (FP16 and BF16: raw only).
CONTENTS_FIELD: Final = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
    "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}  # fmt: skip

# Why a request went to the model on its own (the label of the pass-through counter).
BYTES: Final = "bytes"  # a BYTES tensor: elements of no fixed size
CLASSIFICATION: Final = "classification"  # an output asks for classification: per-request top-k
SHAPE: Final = "shape"  # an input without the batch dimension, or inputs disagreeing on its size
MALFORMED: Final = "malformed"  # not a valid request; the model says what is wrong
TOO_LARGE: Final = "too_large"  # more rows than max_batch_size on its own
REPLY_MISMATCH: Final = "reply_mismatch"  # the model's reply did not have the batch's rows
NOT_BATCHABLE: Final = "not_batchable"  # a transport that cannot hand over its messages
REASONS: Final = (BYTES, CLASSIFICATION, SHAPE, MALFORMED, TOO_LARGE, REPLY_MISMATCH, NOT_BATCHABLE)


@dataclass(frozen=True, slots=True)
class PassThrough:
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rows:
    """A batchable request: its group key and how many rows it brings."""

    key: bytes
    rows: int


def batchable(request: pb.ModelInferRequest, dim: int, max_batch_size: int) -> Rows | PassThrough:
    """The request's key and rows along `dim`, or why it must go on its own."""
    if not request.inputs:
        return PassThrough(MALFORMED, "no inputs")
    for out in request.outputs:
        if "classification" in out.parameters:
            return PassThrough(CLASSIFICATION, f'output "{out.name}" asks for classification')
    raw = len(request.raw_input_contents) > 0
    if raw and len(request.raw_input_contents) != len(request.inputs):
        return PassThrough(MALFORMED, "raw_input_contents do not match the inputs")
    rows = -1
    key = pb.ModelInferRequest(
        model_name=request.model_name, model_version=request.model_version, parameters=request.parameters
    )
    for i, tensor in enumerate(request.inputs):
        if tensor.datatype == "BYTES":
            return PassThrough(BYTES, f'input "{tensor.name}" is BYTES')
        size = ELEMENT_SIZE.get(tensor.datatype)
        if size is None:
            return PassThrough(MALFORMED, f'input "{tensor.name}" has datatype "{tensor.datatype}"')
        shape = list(tensor.shape)
        if len(shape) <= dim or any(d < 0 for d in shape):
            return PassThrough(SHAPE, f'input "{tensor.name}" has shape {shape}, no batch dimension {dim}')
        if rows not in (-1, shape[dim]):
            return PassThrough(SHAPE, f"inputs disagree on the batch size ({rows} and {shape[dim]})")
        rows = shape[dim]
        count = math.prod(shape)
        if raw:
            if len(request.raw_input_contents[i]) != count * size:
                return PassThrough(MALFORMED, f'raw_input_contents of "{tensor.name}" do not fit its shape')
        elif tensor.datatype not in CONTENTS_FIELD:
            return PassThrough(MALFORMED, f'input "{tensor.name}" is {tensor.datatype}: raw contents only')
        elif len(_values(tensor.contents, tensor.datatype)) != count:
            return PassThrough(MALFORMED, f'contents of "{tensor.name}" do not fit its shape')
        shape[dim] = 0
        key.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=shape, parameters=tensor.parameters)
    if rows < 1:
        return PassThrough(SHAPE, "no rows along the batch dimension")
    if rows > max_batch_size:
        return PassThrough(TOO_LARGE, f"{rows} rows, max_batch_size is {max_batch_size}")
    key.outputs.extend(request.outputs)
    # The form (raw or typed) is part of the key: the model answers in the form it was asked in.
    key.id = "raw" if raw else "contents"
    return Rows(key.SerializeToString(deterministic=True), rows)


def merge(requests: Sequence[pb.ModelInferRequest], dim: int) -> pb.ModelInferRequest:
    """One request holding every request's rows, in order, along `dim` (all from one key)."""
    first = requests[0]
    merged = pb.ModelInferRequest(
        model_name=first.model_name,
        model_version=first.model_version,
        parameters=first.parameters,
        outputs=first.outputs,
    )
    raw = len(first.raw_input_contents) > 0
    for i, tensor in enumerate(first.inputs):
        shape = list(tensor.shape)
        counts = [r.inputs[i].shape[dim] for r in requests]
        shape[dim] = sum(counts)
        out = merged.inputs.add(
            name=tensor.name, datatype=tensor.datatype, shape=shape, parameters=tensor.parameters
        )
        outer, inner = _outer_inner(tensor.shape, dim)
        if raw:
            size = ELEMENT_SIZE[tensor.datatype] * inner
            merged.raw_input_contents.append(
                _concat([r.raw_input_contents[i] for r in requests], [c * size for c in counts], outer)
            )
        else:
            parts = [_values(r.inputs[i].contents, tensor.datatype) for r in requests]
            _values(out.contents, tensor.datatype).extend(_concat(parts, [c * inner for c in counts], outer))
    return merged


def split(
    response: pb.ModelInferResponse, requests: Sequence[pb.ModelInferRequest], rows: Sequence[int], dim: int
) -> list[pb.ModelInferResponse] | PassThrough:
    """The reply to a merged request cut into each request's own, in order; or why it cannot be."""
    total = sum(rows)
    raw = len(response.raw_output_contents) > 0
    if raw and len(response.raw_output_contents) != len(response.outputs):
        return PassThrough(REPLY_MISMATCH, "raw_output_contents do not match the outputs")
    answers = [
        pb.ModelInferResponse(
            model_name=response.model_name,
            model_version=response.model_version,
            id=r.id,
            parameters=response.parameters,
        )
        for r in requests
    ]
    for i, tensor in enumerate(response.outputs):
        shape = list(tensor.shape)
        if len(shape) <= dim or shape[dim] != total:
            return PassThrough(
                REPLY_MISMATCH, f'output "{tensor.name}" has shape {shape}, the batch has {total} rows'
            )
        size = ELEMENT_SIZE.get(tensor.datatype)
        if size is None or not (raw or tensor.datatype in CONTENTS_FIELD):
            return PassThrough(REPLY_MISMATCH, f'output "{tensor.name}" is {tensor.datatype}')
        outer, inner = _outer_inner(shape, dim)
        if raw:
            data = response.raw_output_contents[i]
            if len(data) != math.prod(shape) * size:
                return PassThrough(REPLY_MISMATCH, f'raw output "{tensor.name}" does not fit its shape')
            pieces: list[Any] = _cut(data, [n * inner * size for n in rows], outer)
        else:
            values = _values(tensor.contents, tensor.datatype)
            if len(values) != math.prod(shape):
                return PassThrough(REPLY_MISMATCH, f'output "{tensor.name}" does not fit its shape')
            pieces = _cut(list(values), [n * inner for n in rows], outer)
        for answer, n, piece in zip(answers, rows, pieces, strict=True):
            own = list(shape)
            own[dim] = n
            out = answer.outputs.add(
                name=tensor.name, datatype=tensor.datatype, shape=own, parameters=tensor.parameters
            )
            if raw:
                answer.raw_output_contents.append(piece)
            else:
                _values(out.contents, tensor.datatype).extend(piece)
    return answers


def _outer_inner(shape: Sequence[int], dim: int) -> tuple[int, int]:
    """Elements before and after `dim` in a row-major tensor of `shape`."""
    return math.prod(shape[:dim]), math.prod(shape[dim + 1 :])


def _concat(parts: Sequence[Any], slabs: Sequence[int], outer: int) -> Any:
    """Each part holds `outer` slabs of its own length; interleave them slab index by slab index."""
    if outer == 1:
        return b"".join(parts) if isinstance(parts[0], bytes) else list(itertools.chain.from_iterable(parts))
    pieces = [p[o * n : (o + 1) * n] for o in range(outer) for p, n in zip(parts, slabs, strict=True)]
    return b"".join(pieces) if isinstance(parts[0], bytes) else list(itertools.chain.from_iterable(pieces))


def _cut(data: Any, slabs: Sequence[int], outer: int) -> list[Any]:
    """The inverse of _concat: each caller's slabs of `data`, joined per caller."""
    width = sum(slabs)
    starts = [sum(slabs[:k]) for k in range(len(slabs))]
    out: list[Any] = []
    for start, n in zip(starts, slabs, strict=True):
        if outer == 1:
            out.append(data[start : start + n])
            continue
        pieces = [data[o * width + start : o * width + start + n] for o in range(outer)]
        joined = b"".join(pieces) if isinstance(data, bytes) else list(itertools.chain.from_iterable(pieces))
        out.append(joined)
    return out


def _values(contents: pb.InferTensorContents, datatype: str) -> Any:
    """The repeated field of `contents` that holds `datatype`'s values."""
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise ValueError(f"{datatype} has no typed contents field")
    return getattr(contents, field)
