"""Outlier ejection: take failing endpoints out of the pool for a while. Knows nothing about transports."""
