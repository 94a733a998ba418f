"""The gRPC egress as a stream-level HTTP/2 proxy: calls routed by :authority, tried on upstream streams."""
