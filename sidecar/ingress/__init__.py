"""Ingress: the listeners callers reach the model through (gRPC data plane, OIP REST binding, probes)."""
