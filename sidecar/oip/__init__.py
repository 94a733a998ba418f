"""The Open Inference Protocol (OIP v2) bindings other than gRPC: pure translation, no I/O."""
