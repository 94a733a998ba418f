"""Observability: bounded label names, trace propagation and export, Prometheus metrics, access logs.

The filters that feed these live in sidecar/filters/; the composition root builds what the config
asks for through `assembly.Telemetry`, and a part that is off puts no filter in the chain.
"""
