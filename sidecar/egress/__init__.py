"""Egress: the model calls other services by name through its sidecar (discovery, balancing, resilience)."""
