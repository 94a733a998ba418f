"""The gRPC interop test cases through the sidecar, with grpc-go's interop server as the model."""
