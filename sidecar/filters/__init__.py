"""Filters on the request path: one shape for every concern (readiness, metrics, auth, limits)."""
