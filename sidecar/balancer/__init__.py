"""Load balancing: per-endpoint load and O(1) pickers. Knows nothing about gRPC, HTTP or sockets."""
