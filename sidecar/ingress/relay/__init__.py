"""A frame-level HTTP/2 relay for gRPC ingress: Python reads frame headers and header blocks, not calls."""
