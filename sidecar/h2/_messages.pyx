# cython: language_level=3, auto_pickle=False
"""The compiled twin of messages.py: gRPC's length-prefixed messages counted in DATA, and the observer.

messages.py is the reference and says what each class does; this module is the same API with
the same behaviour (tests/unit/test_h2_messages.py runs against both, tests/fuzz_native compares
them on random input), statement for statement, so that the two read side by side. It runs once
per DATA frame of every relayed call. Where Python would raise IndexError, this raises it too:
the buffer is read through a pointer, so each entry point checks its range against the buffer
first (Python's slicing would clip or wrap a bad range; here it is refused). Bounds are those of
limits.py, read at import. Which of the two runs: build.py. Knows nothing about HPACK or stream
states; of frames, only DATA's header and padding.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from sidecar.h2 import frames as _f
from sidecar.h2 import limits as _limits

cdef extern from *:
    """
    /* setup.py defines it: "name=sha256,..." of this module's sources and its pure twin. */
    #ifndef SIDECAR_SOURCES
    #define SIDECAR_SOURCES ""
    #endif
    """
    const char *SIDECAR_SOURCES

# The sources this build was made from, as build.py checks them against the files present.
SOURCES = SIDECAR_SOURCES.decode("ascii")

cdef Py_ssize_t HEADER_LEN = _f.HEADER_LEN
cdef unsigned char PADDED = _f.PADDED
cdef long long EXACT_MESSAGES = _limits.EXACT_MESSAGES
# Any bound past this lets every message through whole (a message is under 2**32 bytes); keeping
# the bound this small keeps `room` below from overflowing.
cdef Py_ssize_t _UNBOUNDED = 1LL << 40


cdef inline long long _be32(const unsigned char *p) noexcept:
    return (<long long>p[0] << 24) | (<long long>p[1] << 16) | (<long long>p[2] << 8) | p[3]


cdef inline const unsigned char *_bytes(bytes data, Py_ssize_t start, Py_ssize_t end) except NULL:
    """data's bytes, once [start:end] is known to lie within them (start may pass end: nothing is read)."""
    if data is None:
        raise TypeError("expected bytes, not None")
    if start < 0 or end > PyBytes_GET_SIZE(data):
        raise IndexError(f"range [{start}:{end}] outside {PyBytes_GET_SIZE(data)} bytes")
    return <const unsigned char *>PyBytes_AS_STRING(data)


cdef inline int _extend(bytearray message, const unsigned char *p, Py_ssize_t n) except -1:
    cdef Py_ssize_t have = PyByteArray_GET_SIZE(message)
    if n > 0:
        PyByteArray_Resize(message, have + n)
        memcpy(PyByteArray_AS_STRING(message) + have, p, n)
    return 0


cdef class MessageBytes:
    """The message bytes in one direction of a gRPC stream's DATA, without each message's 5-byte
    prefix (gRPC over HTTP/2: compressed flag, 4-byte length): what grpcio's handlers count.
    Exact for the first EXACT_MESSAGES messages; after those, prefixes count as message bytes."""

    @property
    def counted(self):
        """The total, or None without a message (as grpcio reports a call that got no reply)."""
        return self.total if self.messages else None

    def __init__(self):
        self.total = 0
        self.messages = 0
        self._left = 0
        self._have = 0

    cpdef frame(self, bytes buf, Py_ssize_t pos, Py_ssize_t end):
        """Count the DATA frame buf[pos:end] (its 9-byte header included), without its padding."""
        cdef const unsigned char *b = _bytes(buf, pos, end)
        cdef Py_ssize_t start, size
        cdef long long length
        if end - pos < HEADER_LEN:
            raise IndexError(f"frame [{pos}:{end}] shorter than its header")
        start = pos + HEADER_LEN
        if b[pos + 4] & PADDED and start < end:
            end -= b[start]
            start += 1
        size = end - start - 5
        if size >= 0 and not self._left and not self._have and self.messages < EXACT_MESSAGES:
            length = _be32(b + start + 1)
            if size <= length:
                self.messages += 1
                self._left = length - size
                self.total += size
                return
        self.add(buf, start, end)

    cpdef add(self, bytes data, Py_ssize_t start, Py_ssize_t end):
        """Count the DATA payload bytes data[start:end]."""
        cdef const unsigned char *b = _bytes(data, start, end)
        cdef long long size, take
        cdef Py_ssize_t pos, need, got
        if self.messages >= EXACT_MESSAGES:
            self.total += end - start
            return
        if not self._left and not self._have and end - start >= 5:
            size = _be32(b + start + 1)
            self.messages += 1
            if end - start - 5 <= size:
                self._left = size - (end - start - 5)
                self.total += end - start - 5
                return
            self.total += size
            start += 5 + size
        pos = start
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                self._left -= take
                self.total += take
                pos += take
                continue
            need = 5 - self._have
            got = min(need, end - pos)
            memcpy(self._prefix + self._have, b + pos, got)
            self._have += got
            pos += need
            if self._have == 5:
                self.messages += 1
                self._left = _be32(self._prefix + 1)
                self._have = 0
                if self.messages >= EXACT_MESSAGES and pos < end:
                    self.total += end - pos
                    return


cdef class MessageObserver(MessageBytes):
    """Counts as MessageBytes does, exactly for every message, and hands each message to `deliver`
    whole (its 5-byte prefix included) as its last byte passes: copied once when one DATA frame
    holds it, joined once when it spans several. A message longer than `max_message` is handed up
    cut short there; its prefix still says how long it was."""

    def __init__(self, deliver, max_message=_limits.OBSERVED_MESSAGE):
        super().__init__()
        self._deliver = deliver
        # Every negative bound acts as -1 does, every bound past _UNBOUNDED as _UNBOUNDED does.
        self._max = -1 if max_message < 0 else min(max_message, _UNBOUNDED)
        self._message = bytearray()

    cpdef frame(self, bytes buf, Py_ssize_t pos, Py_ssize_t end):
        cdef const unsigned char *b = _bytes(buf, pos, end)
        cdef Py_ssize_t start
        if end - pos < HEADER_LEN:
            raise IndexError(f"frame [{pos}:{end}] shorter than its header")
        start = pos + HEADER_LEN
        if b[pos + 4] & PADDED and start < end:
            end -= b[start]
            start += 1
        self.add(buf, start, end)

    cpdef add(self, bytes data, Py_ssize_t start, Py_ssize_t end):
        cdef const unsigned char *b = _bytes(data, start, end)
        cdef bytearray message = self._message
        cdef Py_ssize_t pos = start, have, room
        cdef long long size, take
        while pos < end:
            if not PyByteArray_GET_SIZE(message) and end - pos >= 5:
                size = _be32(b + pos + 1)
                if end - pos - 5 >= size and size <= self._max:
                    # Whole in this frame: one copy, no joining.
                    self.messages += 1
                    self.total += size
                    self._deliver(PyBytes_FromStringAndSize(<const char *>b + pos, 5 + size))
                    pos += 5 + size
                    continue
            have = PyByteArray_GET_SIZE(message)
            if have < 5:
                take = min(5 - have, end - pos)
                _extend(message, b + pos, take)
                pos += take
                if PyByteArray_GET_SIZE(message) < 5:
                    return
                self.messages += 1
                self._left = _be32(<const unsigned char *>PyByteArray_AS_STRING(message) + 1)
            take = min(self._left, end - pos)
            room = self._max + 5 - PyByteArray_GET_SIZE(message)
            if room > 0:
                _extend(message, b + pos, min(take, room))
            self._left -= take
            self.total += take
            pos += take
            if not self._left:
                self._deliver(bytes(message))
                PyByteArray_Resize(message, 0)
