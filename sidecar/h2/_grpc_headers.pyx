# cython: language_level=3, auto_pickle=False
"""The compiled twin of grpc_headers.py: a request block's path, deadline and metadata, a reply's status.

grpc_headers.py is the reference and says what each function does. This module compiles the two
that run on every call, `request` and `outcome`, statement for statement, and takes the others
(and Malformed, so that one `except` catches it from either build) from the pure module, which
chooses no twin. tests/unit/test_h2_grpc_headers.py runs against both builds and compares them on
random header lists. Which of the two runs: build.py. Knows nothing about HPACK encoding,
messages, sockets or connection state.
"""

import urllib.parse

from sidecar.h2 import grpc_headers as _pure
from sidecar.h2.limits import KNOWN_FIELDS
from sidecar.transport.metadata import HOP_BY_HOP as _HOP_BY_HOP

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

# The pure module's API, where this twin compiles nothing of its own.
Malformed = _pure.Malformed
deadline = _pure.deadline
metadata = _pure.metadata
with_metadata = _pure.with_metadata
reset_outcome = _pure.reset_outcome

cdef frozenset HOP_BY_HOP = _HOP_BY_HOP
cdef frozenset _REQUEST_PSEUDO = _pure._REQUEST_PSEUDO
cdef frozenset _REQUIRED_PSEUDO = _pure._REQUIRED_PSEUDO
cdef frozenset _CONNECTION_SPECIFIC = _pure._CONNECTION_SPECIFIC
cdef object _BAD_NAME = _pure._BAD_NAME.search
cdef object _BAD_VALUE = _pure._BAD_VALUE.search
cdef object _binary = _pure._binary
cdef object _status = _pure._status
cdef dict _STATUSES = _pure._STATUSES
cdef object _deadline = _pure.deadline
cdef object _unquote = urllib.parse.unquote


def request(headers, known=None, Py_ssize_t max_known=KNOWN_FIELDS):
    """A request block's :path, deadline (from grpc-timeout) and metadata, in one pass (see grpc_headers.py)."""
    cdef set seen = set()
    cdef set cache
    cdef list out = []
    cdef str path = ""
    cdef str k, v
    cdef bint regular = False
    cdef Py_UCS4 first
    cdef object timeout = None
    cdef tuple field
    if known is None:
        known = set()
    cache = known
    for item in headers:
        field = item if type(item) is tuple else tuple(item)
        k, v = field
        if field not in cache:
            # -bin values may be raw bytes: gRPC's true-binary metadata, negotiated in SETTINGS.
            if _BAD_NAME(k) is not None or (_BAD_VALUE(v) is not None and not k.endswith("-bin")):
                raise Malformed(f"field {k[:64]!r} has a character RFC 9113 8.2.1 forbids")
            if len(cache) >= max_known:
                cache.clear()
            cache.add(field)
        first = k[0]
        if first == u":":
            if regular or k in seen or k not in _REQUEST_PSEUDO:
                raise Malformed(f"pseudo-header field {k[:64]!r} misplaced, repeated or unknown")
            seen.add(k)
            if k == ":path":
                path = v
        else:
            regular = True
            if k not in HOP_BY_HOP:
                out.append(_binary(k, v) if k.endswith("-bin") else field)
            elif k == "grpc-timeout":
                timeout = _deadline(v)
            elif k in _CONNECTION_SPECIFIC or (k == "te" and v != "trailers"):
                raise Malformed(f"connection-specific field {k!r}")
    if not seen >= _REQUIRED_PSEUDO:
        raise Malformed("a pseudo-header field of :method, :scheme and :path is missing")
    if not (path[:1] == "/" and path.isascii() and path.isprintable()):
        raise Malformed(f":path {path[:64]!r} is not a printable ASCII absolute path")
    return path, timeout, out


def outcome(headers):
    """The gRPC status a trailers block carries; None if it carries none (see grpc_headers.py)."""
    cdef str k, v
    cdef object code = None
    cdef str message = ""
    cdef list others = []
    if len(headers) == 1 and headers[0][0] == "grpc-status":  # the usual trailers: status alone
        v = headers[0][1]
        return _STATUSES.get(v) or _status(v, "", [])
    for k, v in headers:
        if k == "grpc-status":
            code = v
        elif k == "grpc-message":
            message = _unquote(v)
        else:
            others.append((k, v))
    if code is None:
        return None
    return _status(code, message, metadata(others))
