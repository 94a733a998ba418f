"""ai-sidecar: governance for polyglot inference services behind one OIP v2 gRPC contract."""

__version__ = "0.1.0"
