"""The loopback-only admin listener: drain, and what this sidecar sees of the registry."""
