"""Injection of ai-sidecar into Kubernetes pods: one pure function under two fronts (CLI and webhook)."""
