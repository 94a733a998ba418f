"""The HPACK decoder (sidecar/h2/hpack_decoder.py), checked against the `hpack` package."""

import random

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from sidecar.h2.hpack_decoder import Decoder, HeaderListTooLarge, HPACKDecodeError, huffman_decode

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def _reference(decoder: hpack.Decoder, block: bytes) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in decoder.decode(block, raw=True)]


def test_every_byte_value_survives_huffman_decoding():
    rng = random.Random(7)
    for _ in range(500):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        assert huffman_decode(_HUFFMAN.encode(raw)) == raw.decode("latin-1")


@pytest.mark.parametrize(
    ("encoded", "why"),
    [
        (b"\xff\xff\xff\xff", "EOS"),  # 30 ones hold the whole EOS code
        (b"\x1f\xff", "padding"),  # 'a' (00011) then 11 bits of padding: more than 7
        (b"\x00", "padding"),  # '0' (00000) then 000: padding that is not EOS's ones
    ],
)
def test_invalid_huffman_is_a_decoding_error(encoded, why):
    with pytest.raises(HPACKDecodeError, match=why):
        huffman_decode(encoded)


def test_blocks_with_table_churn_decode_as_the_hpack_package_decodes_them():
    rng = random.Random(1)
    encoder, ours, theirs = hpack.Encoder(), Decoder(), hpack.Decoder()
    for _ in range(2000):
        fields = [
            (":path", f"/svc/M{rng.randrange(4)}"),
            (f"x-key-{rng.randrange(150)}", "v" * rng.randrange(0, 200)),
            ("grpc-timeout", f"{rng.randrange(10**6)}u"),
        ]
        if rng.random() < 0.05:
            encoder.header_table_size = rng.choice([0, 64, 1024, 4096])
        block = encoder.encode(fields, huffman=rng.random() < 0.5)
        assert ours.decode(block) == _reference(theirs, block)
        entries = theirs.header_table.dynamic_entries
        assert ours.table[1] == tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in entries)


def test_a_block_that_leaves_the_table_alone_is_served_from_the_cache_until_the_table_changes():
    encoder, decoder = hpack.Encoder(), Decoder()
    decoder.decode(encoder.encode([("x-a", "1")]))  # x-a: 1 now at index 62
    indexed = b"\xbe"  # index 62
    assert decoder.decode(indexed) == [("x-a", "1")]
    before = decoder.generation
    assert decoder.decode(indexed) == [("x-a", "1")] and decoder.generation == before
    decoder.decode(encoder.encode([("x-b", "2")]))  # x-b now at 62, x-a at 63
    assert decoder.decode(indexed) == [("x-b", "2")]


def test_a_returned_list_is_the_callers_to_change():
    decoder = Decoder()
    first = decoder.decode(b"\x82")
    first.append(("x", "y"))
    assert decoder.decode(b"\x82") == [(":method", "GET")]


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "index 62"),  # the dynamic table is empty
        (b"\xff\xff\xff\xff\xff\x0f", "too large"),
        (b"\xff", "truncated"),
        (b"\x40\x05ab", "past the block"),
        (b"\x3f\xe2\x1f", "exceeds the limit"),  # size update to 4097
        (b"\x82\x20", "after a field"),
    ],
)
def test_malformed_blocks_are_decoding_errors(block, why):
    with pytest.raises(HPACKDecodeError, match=why):
        Decoder().decode(block)


def test_size_updates_evict_and_respect_the_announced_limit():
    decoder = Decoder()
    decoder.decode(b"\x40\x03x-a\x011")  # literal with indexing: 3 + 1 + 32 = 36 octets
    assert decoder.table == (4096, (("x-a", "1"),))
    decoder.decode(b"\x20")  # size 0 evicts everything
    size, entries = decoder.table
    assert size == 0 and not entries
    decoder.limit = 100
    with pytest.raises(HPACKDecodeError):
        decoder.decode(b"\x3f\x46")  # 31 + 70 = 101
    decoder.decode(b"\x3f\x45")  # 100
    size, _ = decoder.table
    assert size == 100


def _bomb(references: int) -> bytes:
    """A 4,000-octet value added to the table, then indexed (62: the newest entry) again and again."""
    literal = b"\x40\x01x\x7f" + bytes([0x80 | (4000 - 127) & 0x7F, (4000 - 127) >> 7]) + b"v" * 4000
    return literal + b"\xbe" * references


def test_the_decoded_list_is_bounded_while_decoding_and_stops_at_the_field_that_passes():
    field = 1 + 4000 + 32  # name, value, RFC 9113's 32 octets
    assert len(Decoder(max_list=3 * field).decode(_bomb(2))) == 3
    decoder = Decoder(max_list=3 * field)
    with pytest.raises(HeaderListTooLarge, match=f"larger than {3 * field} bytes"):
        decoder.decode(_bomb(3))


def test_a_bomb_of_references_costs_its_bound_not_its_expansion():
    import tracemalloc

    bomb = _bomb(768 << 10)  # ~3 GB if decoded whole
    decoder = Decoder(max_list=64 << 10)
    tracemalloc.start()
    try:
        with pytest.raises(HeaderListTooLarge):
            decoder.decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 128 << 10, peak  # the 4 KB entry and a list of ~16 references to it


def test_large_blocks_are_not_cached():
    decoder = Decoder()
    small, large = b"\x82" * 10, b"\x82" * 5000
    decoder.decode(small)
    decoder.decode(large)
    assert small in decoder._blocks and large not in decoder._blocks
