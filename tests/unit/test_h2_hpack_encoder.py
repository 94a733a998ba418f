"""HPACK encoding of the relay's own blocks (sidecar/h2/hpack_encoder.py), decoded by the `hpack` package."""

import hpack

from sidecar.core.call import Outcome
from sidecar.core.status import Code
from sidecar.h2 import hpack_encoder as he


def _decode(decoder: hpack.Decoder, block: bytes) -> list[tuple[str, str]]:
    """With the `hpack` package's decoder: what we encode must decode with someone else's."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in decoder.decode(block, raw=True)]


def test_a_trailers_only_reply_decodes_and_leaves_the_decoder_table_empty():
    decoder = hpack.Decoder()
    block = he.trailers_only(Outcome(Code.UNAVAILABLE, "/m: model not ready — 100%"))
    assert _decode(decoder, block) == [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "14"),
        ("grpc-message", "/m: model not ready %E2%80%94 100%25"),
    ]
    assert len(decoder.header_table.dynamic_entries) == 0


def test_appended_literals_do_not_disturb_a_peer_table():
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    block = encoder.encode([(":path", "/a"), ("x-a", "1")]) + he.literal_fields([("traceparent", "00-ab")])
    assert _decode(decoder, block)[-1] == ("traceparent", "00-ab")
    # The peers' tables still agree: the next block, indexed against them, decodes.
    assert _decode(decoder, encoder.encode([("x-a", "1")])) == [("x-a", "1")]


def test_a_size_update_encodes_per_rfc_7541():
    assert he.table_size_update(0) == b"\x20"
    decoder = hpack.Decoder()
    decoder.decode(he.table_size_update(0) + he.table_size_update(4096))
    assert decoder.header_table.maxsize == 4096


def test_trailers_after_response_headers_carry_no_status_pseudo_header():
    block = he.trailers_only(Outcome(Code.UNAVAILABLE, "model gone"), after_headers=True)
    assert _decode(hpack.Decoder(), block) == [("grpc-status", "14"), ("grpc-message", "model gone")]


def test_blocks_after_the_tables_diverge_decode_whole_and_leave_the_model_table_as_it_was():
    client, model = hpack.Encoder(), hpack.Decoder()
    blocks = he.ModelBlocks()
    first = [(":method", "POST"), (":path", "/a"), ("x-kept", "1")]
    sent = client.encode(first)
    assert blocks.block(sent, first, []) is sent  # the client's own, while the tables agree
    _decode(model, sent)
    before = list(model.header_table.dynamic_entries)
    blocks.diverge()  # a block the model never saw changed the client's table
    second = [(":method", "POST"), (":path", "/b"), ("grpc-trace-bin", "AAEC"), ("x-kept", "1")]
    block = blocks.block(client.encode(second), second, [("x-added", "2")])
    assert _decode(model, block) == [*second, ("x-added", "2")]
    assert list(model.header_table.dynamic_entries) == before


def test_the_literals_kept_after_divergence_stay_bounded_and_right():
    blocks, model = he.ModelBlocks(), hpack.Decoder()
    blocks.diverge()
    for i in range(3 * he.MAX_KEPT_LITERALS):
        fields = [(":path", "/a"), ("grpc-timeout", f"{i}m")]  # one field new each call
        assert _decode(model, blocks.block(b"", fields, [])) == fields
    assert len(blocks._literals) <= he.MAX_KEPT_LITERALS
