"""Observability: bounded label names, trace propagation and export, Prometheus metrics, access logs.

Knows nothing of the filters that feed these (sidecar/filters/, which import this package) or of the
config: sidecar/observability.py, beside the composition root, builds what the config asks for.
"""
