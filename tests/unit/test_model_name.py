"""Field 1 of a request message, read without parsing, whole or from the start of a gRPC stream."""

import struct

from inference import grpc_service_pb2 as pb
from sidecar.h2 import frames as f
from sidecar.h2.reader import gathered
from sidecar.oip.model_name import NEED_MORE, from_grpc_frame, from_message


def framed(message: bytes, compressed: bool = False) -> bytes:
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def test_reads_the_model_of_each_contract_request():
    assert from_message(pb.ModelInferRequest(model_name="digits", id="1").SerializeToString()) == "digits"
    assert from_message(pb.ModelMetadataRequest(name="ocr").SerializeToString()) == "ocr"
    assert from_message(pb.ModelReadyRequest(name="asr", version="2").SerializeToString()) == "asr"


def test_a_prefix_asks_for_more_and_a_request_without_a_name_names_none():
    whole = pb.ModelInferRequest(model_name="digits", id="1").SerializeToString()
    assert from_message(whole[:4], complete=False) is NEED_MORE
    assert from_grpc_frame(framed(whole)[:7]) is NEED_MORE
    assert from_message(pb.ModelInferRequest(id="x").SerializeToString()) == ""
    assert from_grpc_frame(framed(b"")) == ""


def test_field_one_found_after_other_fields_written_first():
    # A non-canonical encoder may put field 1 last: id (2... no, field 3 "id") then model_name.
    other_first = b"\x1a\x01x" + b"\x0a\x06digits"
    assert from_message(other_first) == "digits"


def test_compressed_and_malformed_messages_name_no_model():
    assert from_grpc_frame(framed(b"\x0a\x06digits", compressed=True)) == ""
    assert from_message(b"\x0b\x00") == ""  # a group: not a message this reader understands
    assert from_message(b"\x0a\xff\xff\xff\xff\x0f") == ""  # a name longer than allowed


def test_gathered_collects_one_streams_data_from_held_frames():
    msg = framed(pb.ModelInferRequest(model_name="digits").SerializeToString())
    buf = (
        f.frame(f.DATA, 0, 3, b"other")
        + f.frame(f.DATA, 0, 1, msg[:4])
        + f.frame(f.WINDOW_UPDATE, 0, 0, b"\x00\x00\x01\x00")
        + f.frame(f.DATA, f.END_STREAM, 1, msg[4:])
    )
    data, ended = gathered(buf, 0, 1, 1 << 16)
    assert data == msg and ended
    assert from_grpc_frame(data) == "digits"
    data, ended = gathered(buf[:-3], 0, 1, 1 << 16)  # the last frame not all there yet
    assert data == msg[:4] and not ended
