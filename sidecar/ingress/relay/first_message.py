"""A call's first request bytes as they wait in the client's buffer, looked at without taking them.

The relay holds a new call's later frames until its filters decide (connection.py); when the
filters need the model a contract call names (field 1 of its request, sidecar/oip/model_name.py),
the verdict waits until those bytes are in. This walks the held frames and gathers the call's
DATA payloads (padding left out) and says whether its stream ended among them. Nothing is
consumed: the frames go up, or are dropped, exactly as they would have. Knows nothing else.
"""

from __future__ import annotations

from sidecar.ingress.relay import frames as f


def gathered(buf: bytes, pos: int, sid: int, limit: int) -> tuple[bytes, bool]:
    """Stream `sid`'s DATA payload bytes in the whole frames of buf[pos:] (at most about `limit`),
    and True if its END_STREAM or RST_STREAM is among those frames."""
    parts: list[bytes] = []
    have, n = 0, len(buf)
    while n - pos >= f.HEADER_LEN and have < limit:
        length = int.from_bytes(buf[pos : pos + 3], "big")
        kind, flags = buf[pos + 3], buf[pos + 4]
        stream = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        end = pos + f.HEADER_LEN + length
        if end > n:
            break
        if stream == sid:
            if kind == f.DATA:
                start, stop = pos + f.HEADER_LEN, end
                if flags & f.PADDED and start < stop:
                    stop -= buf[start]
                    start += 1
                if stop > start:
                    parts.append(buf[start:stop])
                    have += stop - start
                if flags & f.END_STREAM:
                    return b"".join(parts), True
            elif kind == f.RST_STREAM:
                return b"".join(parts), True
        pos = end
    return b"".join(parts), False
