"""Circuit breakers in the Resilience4j model. Knows nothing about gRPC, HTTP or sockets."""
