"""HTTP/2 and gRPC-over-HTTP/2 wire machinery: frames, HPACK, streams, flow control, message framing.

Below ingress and egress, which both build on it; it knows no filters, no Call and no sockets.
"""
