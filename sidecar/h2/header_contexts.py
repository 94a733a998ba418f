"""Both sides' HPACK contexts on one relayed connection, and the header blocks the model gets.

The client's blocks are decoded bounded by the relay's SETTINGS_MAX_HEADER_LIST_SIZE, the model's
as they pass to the client. The model gets the client's blocks as they are, so the two tables
stay one, until a block is changed or never sent (the table diverges): from then on the model
gets blocks written here (hpack_encoder.ModelBlocks). Each side's SETTINGS_HEADER_TABLE_SIZE
bounds the other's decoder. Errors come out as the connection errors they are. Knows nothing
about streams, frames' framing or sockets.
"""

from __future__ import annotations

from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.hpack_decoder import Decoder, HeaderListTooLarge, Headers, HPACKDecodeError
from sidecar.h2.stream_events import Fields


class HeaderContexts:
    __slots__ = ("_blocks", "_client", "_model")

    def __init__(self, max_header_list_size: int) -> None:
        self._client = Decoder(max_list=max_header_list_size)
        self._model = Decoder()
        self._blocks = he.ModelBlocks()

    def client(self, block: bytes) -> tuple[Headers, bool]:
        """A client's header block decoded, and whether it changed the client's table."""
        decoder = self._client
        generation = decoder.generation
        try:
            headers = decoder.decode(block)
        except HPACKDecodeError as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the client: {e}") from None
        except HeaderListTooLarge as e:
            raise f.calm(f"{e} (SETTINGS_MAX_HEADER_LIST_SIZE)", "header_list_size") from None
        return headers, decoder.generation != generation

    def model(self, block: bytes) -> Headers:
        try:
            return self._model.decode(block)
        except HPACKDecodeError as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the model: {e}") from None

    def for_model(self, block: bytes, headers: Headers, extra: Fields) -> bytes:
        """The block the model gets for a client's `block` (decoded: `headers`) with `extra` appended."""
        if extra or self._blocks.reencoding:
            return self._blocks.block(block, headers, extra)
        return block

    def diverge(self) -> None:
        """A client block the model will not get changed the client's table."""
        self._blocks.diverge()

    def client_table_size(self, size: int) -> None:
        """The client's SETTINGS_HEADER_TABLE_SIZE: the model encodes for it (its blocks pass)."""
        self._model.limit = size

    def model_table_size(self, size: int) -> None:
        """The model's SETTINGS_HEADER_TABLE_SIZE: the client encodes for it (its blocks pass)."""
        self._client.limit = size
