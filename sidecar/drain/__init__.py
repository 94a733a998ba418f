"""Draining: when a draining sidecar may stop serving, how long a drain can take, and asking one to drain."""
