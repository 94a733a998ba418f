"""Lifecycle decisions: when a draining sidecar may stop serving. Pure logic on an injected clock."""
