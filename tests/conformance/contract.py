"""What OIP v2 says about tensors, as the conformance checks need it. Knows nothing about gRPC or HTTP.

Builds valid inputs from a model's metadata (and deliberately wrong ones), and lists what is wrong
with a model's outputs. Everything here is plain data; the transports live in client.py.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

# The OIP datatype table (KServe predict-api v2, "Tensor Data Types"); BF16 is Triton's
# extension, which OIP clients send and the sidecar's REST binding accepts.
DATATYPES: tuple[str, ...] = (
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES", "BF16",
)  # fmt: skip

# struct format of one little-endian element; BF16 is packed as FP32 and truncated.
_STRUCT = {
    "BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
    "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "FP16": "e", "FP32": "f", "FP64": "d", "BF16": "f",
}  # fmt: skip
ITEM_BYTES = {name: struct.calcsize("<" + code) for name, code in _STRUCT.items()} | {"BF16": 2}

# InferTensorContents field per datatype; FP16 and BF16 have none (raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip

UNKNOWN_MODEL = "conformance-kit-no-such-model"
UNKNOWN_INPUT = "conformance_kit_no_such_input"

Value = bool | int | float | bytes


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as ModelMetadata describes it; -1 marks a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMeta:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class ServerMeta:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class Tensor:
    """A concrete input tensor: values are flat, row-major, and as many as the shape holds."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: tuple[Value, ...]


@dataclass(frozen=True)
class InferRequest:
    model: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...] = ()  # empty: every output, as OIP says
    id: str = ""
    version: str = ""  # empty: the latest, as OIP says


@dataclass(frozen=True)
class OutputTensor:
    """One output of a response; `count` is how many elements it actually carried."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    count: int


@dataclass(frozen=True)
class InferResult:
    model_name: str
    id: str
    outputs: tuple[OutputTensor, ...]
    model_version: str = ""


class CannotBuild(Exception):
    """The kit cannot build inputs for this model (a datatype it does not know); the check is skipped."""

UNKNOWN_VERSION = "conformance-kit-no-such-version"


def pack(tensor: Tensor) -> bytes:
    """The tensor as OIP raw bytes: little-endian, row-major; BYTES elements behind 4-byte lengths."""
    if tensor.datatype == "BYTES":
        return b"".join(len(v).to_bytes(4, "little") + v for v in tensor.values if isinstance(v, bytes))
    if tensor.datatype == "BF16":
        # bfloat16 is the top half of a float32; the kit's small integers are exact in both.
        wide = struct.pack(f"<{len(tensor.values)}f", *tensor.values)
        return b"".join(wide[i + 2 : i + 4] for i in range(0, len(wide), 4))
    return struct.pack(f"<{len(tensor.values)}{_STRUCT[tensor.datatype]}", *tensor.values)


def raw_count(datatype: str, raw: bytes, where: str) -> int:
    """How many elements raw bytes hold; raises ValueError naming `where` if they cannot be whole."""
    if datatype == "BYTES":
        count, pos = 0, 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise ValueError(f"{where}: raw BYTES end inside a length prefix at byte {pos}")
            pos += 4 + int.from_bytes(raw[pos : pos + 4], "little")
            if pos > len(raw):
                raise ValueError(f"{where}: raw BYTES element {count} overruns the buffer")
            count += 1
        return count
    size = ITEM_BYTES.get(datatype)
    if size is None:
        raise ValueError(f'{where}: datatype "{datatype}" is not an OIP datatype')
    if len(raw) % size:
        raise ValueError(f"{where}: {len(raw)} raw bytes are not whole {datatype} elements")
    return len(raw) // size


def small_values(datatype: str, count: int) -> tuple[Value, ...]:
    """`count` small values that every numeric datatype holds exactly (0..3, or False/True);
    for BYTES, UTF-8 text with a multi-byte character, so a byte count is not a character count."""
    if datatype == "BYTES":
        return tuple(f"é{i % 4}".encode() for i in range(count))
    if datatype == "BOOL":
        return tuple(i % 2 == 1 for i in range(count))
    if datatype.startswith(("FP", "BF")):
        return tuple(float(i % 4) for i in range(count))
    return tuple(i % 4 for i in range(count))


def batchable(meta: ModelMeta) -> bool:
    """Every input's first dimension is variable, so the kit may choose the batch size."""
    return all(spec.shape and spec.shape[0] == -1 for spec in meta.inputs)


def concrete_shape(shape: Sequence[int], batch: int) -> tuple[int, ...]:
    """A variable first dimension becomes `batch`, any other variable dimension 1."""
    return tuple(batch if (d == -1 and i == 0) else (1 if d == -1 else d) for i, d in enumerate(shape))


def valid_input(spec: TensorSpec, batch: int) -> Tensor:
    if spec.datatype not in _STRUCT and spec.datatype != "BYTES":
        raise CannotBuild(
            f'input "{spec.name}" has datatype "{spec.datatype}"; the kit builds numeric inputs only'
        )
    shape = concrete_shape(spec.shape, batch)
    return Tensor(spec.name, spec.datatype, shape, small_values(spec.datatype, math.prod(shape)))


def valid_request(
    meta: ModelMeta, batch: int = 1, *, outputs: Sequence[str] = (), id: str = "", version: str = ""
) -> InferRequest:
    inputs = tuple(valid_input(s, batch) for s in meta.inputs)
    return InferRequest(meta.name, inputs, tuple(outputs), id, version)


def with_wrong_datatype(request: InferRequest) -> InferRequest:
    """The first input sent as another datatype (FP64, or FP32 for an FP64 input)."""
    first = request.inputs[0]
    datatype = "FP32" if first.datatype == "FP64" else "FP64"
    values = small_values(datatype, len(first.values))
    return replace(request, inputs=(replace(first, datatype=datatype, values=values), *request.inputs[1:]))


def with_wrong_shape(request: InferRequest, meta: ModelMeta) -> InferRequest:
    """The first input with its last fixed dimension one larger, or one dimension more if none is fixed.

    The values match the wrong shape, so only the shape is wrong, not the element count.
    """
    first = request.inputs[0]
    shape = list(first.shape)
    fixed = [i for i, d in enumerate(meta.inputs[0].shape) if d >= 0]
    if fixed:
        shape[fixed[-1]] += 1
    else:
        shape.append(2)
    wrong = replace(first, shape=tuple(shape), values=small_values(first.datatype, math.prod(shape)))
    return replace(request, inputs=(wrong, *request.inputs[1:]))


def with_unknown_input_name(request: InferRequest) -> InferRequest:
    first = request.inputs[0]
    return replace(request, inputs=(replace(first, name=UNKNOWN_INPUT), *request.inputs[1:]))


def without_last_input(request: InferRequest) -> InferRequest:
    """The request less its last input: no inputs at all for a one-input model."""
    return replace(request, inputs=request.inputs[:-1])


def output_problems(
    meta: ModelMeta, result: InferResult, batch: int, requested: Sequence[str] = ()
) -> list[str]:
    """What is wrong with a response to a valid request of `batch` rows; empty when nothing is."""
    problems: list[str] = []
    if result.model_name != meta.name:
        problems.append(f'response model_name is "{result.model_name}", expected "{meta.name}"')
    specs = {spec.name: spec for spec in meta.outputs}
    expected = list(requested) or list(specs)
    got = [out.name for out in result.outputs]
    if sorted(got) != sorted(expected):
        problems.append(f"response has outputs {got}, expected {expected}")
    for out in result.outputs:
        spec = specs.get(out.name)
        if spec is None:
            continue
        where = f'output "{out.name}"'
        if out.datatype != spec.datatype:
            problems.append(f'{where} has datatype "{out.datatype}", metadata says "{spec.datatype}"')
        problems += _shape_problems(where, spec.shape, out.shape, batch if batchable(meta) else None)
        if any(d < 0 for d in out.shape):
            continue
        if out.count != math.prod(out.shape):
            problems.append(
                f"{where} has shape {list(out.shape)} ({math.prod(out.shape)} elements) "
                f"but carries {out.count}"
            )
    return problems


def _shape_problems(where: str, meta: Sequence[int], got: Sequence[int], batch: int | None) -> list[str]:
    says = f"metadata says {list(meta)}"
    if len(got) != len(meta):
        return [f"{where} has shape {list(got)}, {says}"]
    for i, (m, g) in enumerate(zip(meta, got, strict=True)):
        if g < 0:
            return [f"{where} has shape {list(got)} with a negative dimension"]
        if m >= 0 and g != m:
            return [f"{where} has shape {list(got)}, {says}"]
        if m == -1 and i == 0 and batch is not None and g != batch:
            return [f"{where} has shape {list(got)}: the batch dimension should be {batch}, {says}"]
    return []


def metadata_problems(meta: ModelMeta, asked: str) -> list[str]:
    """What is inconsistent in ModelMetadata for model `asked`; empty when nothing is."""
    problems: list[str] = []
    if meta.name != asked:
        problems.append(f'ModelMetadata for "{asked}" names the model "{meta.name}"')
    for kind, specs in (("inputs", meta.inputs), ("outputs", meta.outputs)):
        if not specs:
            problems.append(f"ModelMetadata lists no {kind}")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            problems.append(f"ModelMetadata {kind} repeat a name: {names}")
        for spec in specs:
            where = f'{kind[:-1]} "{spec.name}"'
            if not spec.name:
                problems.append(f"ModelMetadata has an {kind[:-1]} without a name")
            if spec.datatype not in DATATYPES:
                problems.append(f'{where} has datatype "{spec.datatype}", not an OIP datatype name')
            if any(d < -1 for d in spec.shape):
                problems.append(f"{where} has shape {list(spec.shape)}; a variable dimension is -1")
    return problems
