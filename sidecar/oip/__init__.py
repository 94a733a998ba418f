"""The Open Inference Protocol (OIP v2): the gRPC contract's names and the REST binding. Pure, no I/O."""
