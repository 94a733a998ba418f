# The compiled twin of messages.py, as other compiled modules cimport it (a compiled reader calls
# `frame` without a Python call). The fields are those of messages.py's classes.

cdef class MessageBytes:
    cdef public long long total
    cdef public long long messages
    cdef long long _left  # bytes of the current message still to come
    cdef unsigned char _prefix[5]  # a prefix split across DATA frames: its first _have bytes
    cdef Py_ssize_t _have

    cpdef frame(self, bytes buf, Py_ssize_t pos, Py_ssize_t end)
    cpdef add(self, bytes data, Py_ssize_t start, Py_ssize_t end)


cdef class MessageObserver(MessageBytes):
    cdef object _deliver
    cdef Py_ssize_t _max
    cdef bytearray _message  # the message so far, when DATA frames split it
