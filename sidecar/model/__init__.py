"""The link from the sidecar to its local model process."""
