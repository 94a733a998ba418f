"""HPACK decoding (RFC 7541) for the relay, fast on the header blocks gRPC peers send over and over.

One Decoder per direction mirrors that direction's encoder. A block that leaves the dynamic
table untouched decodes to the same fields for as long as the table stays as it is, so such
blocks are cached by their bytes with the table's generation; Huffman strings are memoised,
and the rest is one pass with a dispatch on each representation's first byte. Names and values
come back as latin-1 strings, so every byte survives. The decoded list is bounded while it is
decoded (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 6.5.2): decoding stops at the field that passes
`max_list`, so a small block of references to a large table entry cannot expand in memory.
Knows nothing about frames or gRPC.
The static table and Huffman code are RFC 7541's appendices as the `hpack` package spells them.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

from sidecar.h2.limits import HPACK_BLOCK_CACHE, HPACK_CACHED_BLOCK, HUFFMAN_MEMO, MAX_HPACK_INT

Headers = list[tuple[str, str]]

STATIC: Final = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in HeaderTable.STATIC_TABLE)
_ENTRY_OVERHEAD: Final = 32  # section 4.1
# Each static field's size as a header list counts it (RFC 9113 6.5.2, the same 32 octets).
STATIC_SIZES: Final = tuple(len(n) + len(v) + _ENTRY_OVERHEAD for n, v in STATIC)


class HPACKDecodeError(Exception):
    """The block is not valid HPACK: a COMPRESSION_ERROR for the connection (RFC 9113 4.3)."""


class HeaderListTooLarge(Exception):
    """The decoded list passed the decoder's `max_list`; decoding stopped there (the table is then
    out of step with the peer's, so the connection cannot go on)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"decoded header list larger than {limit} bytes")
        self.limit = limit


def _huffman_table() -> tuple[list[tuple[int, int, bool]], frozenset[int]]:
    """A state machine over nibbles: (node, nibble) -> (next node, symbol or -1, invalid)."""
    tree: list[list[int]] = [[0, 0]]  # children: > 0 a node, < 0 a leaf -(symbol + 1)
    for sym, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for shift in range(length - 1, -1, -1):
            bit = (code >> shift) & 1
            if shift == 0:
                tree[node][bit] = -(sym + 1)
            else:
                if tree[node][bit] == 0:
                    tree.append([0, 0])
                    tree[node][bit] = len(tree) - 1
                node = tree[node][bit]
    # Padding (section 5.2) is the most significant bits of EOS, all ones, at most 7 of them.
    accepting = {0}
    node = 0
    for _ in range(7):
        node = tree[node][1]
        accepting.add(node)
    table: list[tuple[int, int, bool]] = []
    for start in range(len(tree)):
        for nibble in range(16):
            node, sym, bad = start, -1, False
            for shift in (3, 2, 1, 0):
                child = tree[node][(nibble >> shift) & 1]
                if child > 0:
                    node = child
                elif child == -257:  # EOS inside a string
                    bad = True
                    break
                else:  # the shortest code has 5 bits: at most one symbol per nibble
                    sym, node = -child - 1, 0
            table.append((node, sym, bad))
    return table, frozenset(accepting)


_HUFFMAN, _ACCEPTING = _huffman_table()
_memo: dict[bytes, str] = {}


def huffman_decode(data: bytes) -> str:
    text = _memo.get(data)
    if text is not None:
        return text
    table = _HUFFMAN
    out = bytearray()
    state = 0
    for byte in data:
        state, sym, bad = table[(state << 4) | (byte >> 4)]
        if sym >= 0:
            out.append(sym)
        state, sym, bad2 = table[(state << 4) | (byte & 15)]
        if sym >= 0:
            out.append(sym)
        if bad or bad2:
            raise HPACKDecodeError("EOS symbol inside a Huffman string")
    if state not in _ACCEPTING:
        raise HPACKDecodeError("invalid Huffman padding")
    text = out.decode("latin-1")
    if len(_memo) >= HUFFMAN_MEMO:
        _memo.clear()
    _memo[data] = text
    return text


def _integer(block: bytes, pos: int, mask: int) -> tuple[int, int]:
    """The integer whose prefix is the low bits `mask` of block[pos] (section 5.1); the next offset."""
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(block)
    while True:
        if pos >= end:
            raise HPACKDecodeError("truncated integer")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if value > MAX_HPACK_INT:
            raise HPACKDecodeError("integer too large")
        if not byte & 0x80:
            return value, pos
        shift += 7


def _string(block: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(block):
        raise HPACKDecodeError("truncated string")
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 0x7F)
    end = pos + length
    if end > len(block):
        raise HPACKDecodeError("string runs past the block")
    raw = block[pos:end]
    return (huffman_decode(raw) if huffman else raw.decode("latin-1")), end


class Decoder:
    """The decoding side of one HPACK context: its dynamic table and the limit its peer announced."""

    __slots__ = ("_blocks", "_entries", "_max", "_size", "_sizes", "generation", "limit", "max_list")

    def __init__(self, limit: int = 4096, max_list: int = 1 << 62) -> None:
        self._entries: deque[tuple[str, str]] = deque()  # newest first: index 62 is _entries[0]
        self._sizes: deque[int] = deque()  # each entry's size, in the same order: counted once, when added
        self._size = 0
        self._max = limit  # the size the encoder chose, at most `limit`
        # SETTINGS_HEADER_TABLE_SIZE of the side that decodes; the encoder may not exceed it.
        self.limit = limit
        self.generation = 0  # changes whenever the table does
        # The decoded size (names, values, 32 octets a field: RFC 9113 6.5.2) a block may reach.
        self.max_list = max_list
        self._blocks: dict[bytes, tuple[int, Headers]] = {}

    @property
    def table(self) -> tuple[int, tuple[tuple[str, str], ...]]:
        """(maximum size, entries newest first): for tests and diagnostics."""
        return self._max, tuple(self._entries)

    def decode(self, block: bytes) -> Headers:
        cached = self._blocks.get(block)
        if cached is not None and cached[0] == self.generation:
            return list(cached[1])
        generation = self.generation
        headers = self._decode(block)
        if self.generation == generation and len(block) <= HPACK_CACHED_BLOCK:
            if len(self._blocks) >= HPACK_BLOCK_CACHE:
                self._blocks.clear()
            self._blocks[block] = (generation, headers)
            return list(headers)
        return headers

    def _decode(self, block: bytes) -> Headers:
        headers: Headers = []
        pos, end = 0, len(block)
        entries, sizes = self._entries, self._sizes
        # What the list may still take; each field takes its name, value and 32 octets (sizes of
        # table entries are kept beside them, so a reference costs one subtraction).
        room = self.max_list
        while pos < end:
            first = block[pos]
            if first & 0x80:  # indexed field (6.1)
                index = first & 0x7F
                # Inline for the usual one-byte index: most fields of a repeated block are these.
                if 0 < index <= 61:
                    headers.append(STATIC[index - 1])
                    room -= STATIC_SIZES[index - 1]
                    pos += 1
                elif 62 <= index < 62 + len(entries) and index < 0x7F:
                    headers.append(entries[index - 62])
                    room -= sizes[index - 62]
                    pos += 1
                else:
                    index, pos = _integer(block, pos, 0x7F)
                    field = self._field(index)
                    headers.append(field)
                    room -= len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
                if room < 0:
                    raise HeaderListTooLarge(self.max_list)
                continue
            if first & 0xE0 == 0x20:  # dynamic table size update (6.3)
                if headers:
                    raise HPACKDecodeError("table size update after a field")
                size, pos = _integer(block, pos, 0x1F)
                self._resize(size)
                continue
            # Literals (6.2): with incremental indexing (01xxxxxx), without (0000xxxx), never (0001xxxx).
            indexing = first & 0x40
            index, pos = _integer(block, pos, 0x3F if indexing else 0x0F)
            if index:
                name = self._field(index)[0]
            else:
                name, pos = _string(block, pos)
            value, pos = _string(block, pos)
            size = len(name) + len(value) + _ENTRY_OVERHEAD
            room -= size
            if room < 0:
                raise HeaderListTooLarge(self.max_list)
            headers.append((name, value))
            if indexing:
                self._add(name, value, size)
        return headers

    def _field(self, index: int) -> tuple[str, str]:
        if 0 < index <= 61:
            return STATIC[index - 1]
        dynamic = index - 62
        if 0 <= dynamic < len(self._entries):
            return self._entries[dynamic]
        raise HPACKDecodeError(f"index {index} is not in the table")

    def _add(self, name: str, value: str, size: int) -> None:
        self.generation += 1
        if size > self._max:  # section 4.4: an entry larger than the table empties it
            self._entries.clear()
            self._sizes.clear()
            self._size = 0
            return
        self._size += size
        self._evict()
        self._entries.appendleft((name, value))
        self._sizes.appendleft(size)

    def _resize(self, size: int) -> None:
        if size > self.limit:
            raise HPACKDecodeError(f"table size update to {size} exceeds the limit {self.limit}")
        self.generation += 1
        self._max = size
        self._evict()

    def _evict(self) -> None:
        entries, sizes = self._entries, self._sizes
        while self._size > self._max and entries:
            entries.pop()
            self._size -= sizes.pop()
