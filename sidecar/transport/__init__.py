"""gRPC forwarding shared by ingress and egress: raw bytes, metadata, trailers, status, deadline."""
