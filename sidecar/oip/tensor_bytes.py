"""OIP tensor elements as raw little-endian bytes, per datatype: the datatype table, packing and
unpacking, and the errors that name the element at fault. Knows nothing about JSON documents or
protobuf messages (json_codec.py walks those).

The raw layout is the OIP's ``raw_input_contents``/``raw_output_contents``: little-endian
elements, BYTES elements each behind a 4-byte little-endian length.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.core.errors import SidecarError
from sidecar.core.status import Code

# array() and tobytes() use the host's byte order; the wire is little-endian.
_SWAP = sys.byteorder == "big"

INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)


@dataclass(frozen=True, slots=True)
class Dtype:
    name: str
    kind: Literal["bool", "int", "float", "bytes"]
    size: int  # bytes per element on the wire; 0 for BYTES, whose elements vary
    typecode: str  # array() typecode; "" where array has none (BOOL, FP16, BF16, BYTES)
    field: str  # InferTensorContents field; "" where raw is the only form (FP16, BF16)
    low: int = 0
    high: int = 0


_TABLE = (
    Dtype("BOOL", "bool", 1, "", "bool_contents"),
    Dtype("UINT8", "int", 1, "B", "uint_contents", 0, 2**8 - 1),
    Dtype("UINT16", "int", 2, "H", "uint_contents", 0, 2**16 - 1),
    Dtype("UINT32", "int", 4, "I", "uint_contents", 0, 2**32 - 1),
    Dtype("UINT64", "int", 8, "Q", "uint64_contents", *UINT64),
    Dtype("INT8", "int", 1, "b", "int_contents", -(2**7), 2**7 - 1),
    Dtype("INT16", "int", 2, "h", "int_contents", -(2**15), 2**15 - 1),
    Dtype("INT32", "int", 4, "i", "int_contents", -(2**31), 2**31 - 1),
    Dtype("INT64", "int", 8, "q", "int64_contents", *INT64),
    Dtype("FP16", "float", 2, "", ""),
    Dtype("FP32", "float", 4, "f", "fp32_contents"),
    Dtype("FP64", "float", 8, "d", "fp64_contents"),
    Dtype("BYTES", "bytes", 0, "", "bytes_contents"),
    # Triton's extension; the OIP text lists it nowhere but its clients send it.
    Dtype("BF16", "float", 2, "", ""),
)
DTYPES = {d.name: d for d in _TABLE}
DATATYPES: tuple[str, ...] = tuple(DTYPES)
"""The datatype names this codec accepts, in the OIP table's order (BF16 last)."""

for _d in _TABLE:
    # A platform whose C int is not 4 bytes would silently mis-size INT32/UINT32.
    if _d.typecode and array(_d.typecode).itemsize != _d.size:
        raise ImportError(f"array typecode {_d.typecode!r} is not {_d.size} bytes for {_d.name}")

_KIND_TYPES: dict[str, frozenset[type]] = {
    "bool": frozenset({bool}),
    "int": frozenset({int}),
    "float": frozenset({int, float}),
    "bytes": frozenset({str}),
}
_KIND_NOUN = {"bool": "a boolean", "int": "an integer", "float": "a number", "bytes": "a string"}


def bad_request(message: str) -> SidecarError:
    return SidecarError(Code.INVALID_ARGUMENT, message)


def bad_model(message: str) -> SidecarError:
    return SidecarError(Code.INTERNAL, message)


def show(value: object) -> str:
    """A short JSON rendering of a value for an error message; never dumps a whole tensor."""
    if isinstance(value, list) and (
        len(value) > 8 or any(isinstance(v, list | dict) for v in value)
    ):
        return f"a list of {items(len(value))}"
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def items(n: int) -> str:
    return "1 item" if n == 1 else f"{n} items"


def pack(flat: list[Any], dt: Dtype, at: Callable[[int], str]) -> bytes:
    """Elements as raw little-endian bytes, validated in bulk; `at` names element k on error."""
    allowed = _KIND_TYPES[dt.kind]
    if not set(map(type, flat)) <= allowed:
        k = next(k for k, v in enumerate(flat) if type(v) not in allowed)
        raise bad_request(f"{at(k)} is not {_KIND_NOUN[dt.kind]}, got {show(flat[k])}")

    if dt.kind == "bool":
        return bytes(flat)
    if dt.kind == "bytes":
        parts: list[bytes] = []
        for k, s in enumerate(flat):
            try:
                b = s.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request(f"{at(k)} cannot be encoded as UTF-8 (lone surrogate)") from None
            parts.append(len(b).to_bytes(4, "little"))
            parts.append(b)
        return b"".join(parts)
    if dt.name == "FP16":
        try:
            return struct.pack(f"<{len(flat)}e", *flat)
        except (OverflowError, struct.error):
            k = next(k for k, v in enumerate(flat) if not _fits_fp16(v))
            raise bad_request(
                f"{at(k)} is out of range for FP16 (max 65504), got {show(flat[k])}"
            ) from None
    try:
        arr = array(dt.typecode or "f", flat)
    except OverflowError:
        k = next(k for k, v in enumerate(flat) if not _fits(v, dt))
        bounds = f" ({dt.low} to {dt.high})" if dt.kind == "int" else ""
        raise bad_request(
            f"{at(k)} is out of range for {dt.name}{bounds}, got {show(flat[k])}"
        ) from None
    if dt.name == "BF16":
        return _f32_to_bf16(arr)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _fits(v: Any, dt: Dtype) -> bool:
    if dt.kind == "int":
        return bool(dt.low <= v <= dt.high)
    try:
        float(v)
    except OverflowError:
        return False
    return True


def _fits_fp16(v: Any) -> bool:
    try:
        struct.pack("<e", v)
    except (OverflowError, struct.error):
        return False
    return True


def _f32_to_bf16(arr: array[float]) -> bytes:
    """Float32 values as bfloat16, rounding to nearest even as frameworks do.

    Per element, unlike every other path: bfloat16 has no bulk converter in the standard
    library. NaN is kept a quiet NaN, which rounding could otherwise turn into infinity.
    """
    bits = array("I", arr.tobytes())
    half = array(
        "H",
        [
            (b >> 16) | 0x40
            if (b & 0x7FFFFFFF) > 0x7F800000
            else (b + 0x7FFF + ((b >> 16) & 1)) >> 16
            for b in bits
        ],
    )
    if _SWAP:
        half.byteswap()
    return half.tobytes()


def unpack(raw: bytes, dt: Dtype, count: int, where: str) -> list[Any]:
    if dt.kind == "bytes":
        return texts(_split_bytes(raw, count, where), where)
    if len(raw) != count * dt.size:
        raise bad_model(f"{where} needs {count * dt.size} raw bytes, the model sent {len(raw)}")
    if dt.kind == "bool":
        return list(map(bool, raw))
    if dt.name == "FP16":
        return list(struct.unpack(f"<{count}e", raw))
    if dt.name == "BF16":
        # bfloat16 is the top half of a float32: widen by putting zeros below each element.
        wide = bytearray(4 * count)
        wide[2::4] = raw[0::2]
        wide[3::4] = raw[1::2]
        raw = bytes(wide)
    arr = array(dt.typecode or "f")
    arr.frombytes(raw)
    if _SWAP:
        arr.byteswap()
    return arr.tolist()


def bytes_elements(raw: bytes) -> int:
    """How many length-prefixed BYTES elements `raw` holds exactly; -1 if it is not whole elements."""
    n = 0
    pos = 0
    end = len(raw)
    while pos < end:
        if pos + 4 > end:
            return -1
        pos += 4 + int.from_bytes(raw[pos : pos + 4], "little")
        n += 1
    return n if pos == end else -1


def checked_raw(raw: bytes, dt: Dtype, count: int, where: str) -> bytes:
    """A model's raw output, as it is, once checked to hold `count` whole elements of `dt`."""
    if dt.kind == "bytes":
        found = bytes_elements(raw)
        if found != count:
            got = "are not whole length-prefixed elements" if found < 0 else f"hold {items(found)}"
            raise bad_model(f"{where} needs {count} elements, the model's raw BYTES {got}")
    elif len(raw) != count * dt.size:
        raise bad_model(f"{where} needs {count * dt.size} raw bytes, the model sent {len(raw)}")
    return raw


def _split_bytes(raw: bytes, count: int, where: str) -> list[bytes]:
    items: list[bytes] = []
    view = memoryview(raw)
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise bad_model(f"{where}: raw BYTES end inside a length prefix at byte {pos}")
        n = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if pos + n > len(raw):
            raise bad_model(f"{where}: raw BYTES element {len(items)} overruns the buffer")
        items.append(bytes(view[pos : pos + n]))
        pos += n
    if len(items) != count:
        raise bad_model(f"{where} needs {count} elements, the model sent {len(items)}")
    return items


def texts(items: list[bytes], where: str) -> list[str]:
    try:
        return [b.decode("utf-8") for b in items]
    except UnicodeDecodeError:
        k = next(k for k, b in enumerate(items) if not _is_utf8(b))
        raise SidecarError(
            Code.UNIMPLEMENTED,
            f"{where}: element {k} is not UTF-8 text, which the JSON binding cannot carry "
            "(use the gRPC endpoint)",
        ) from None


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
