"""Retries: a budget that caps them as a share of requests, and the backoff schedule. No I/O."""
