"""Payload capture: inference requests and responses sampled into CloudEvents and sent to sinks,
off the call path."""
