"""Admission control to the model: a concurrency limit (fixed or learned) and a deadline-aware queue."""
